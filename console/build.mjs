// Builds the console's page into chalicelib/console/static/ (committed: the Lambda package and a
// fresh clone need no Node). `make console` runs it after `npm ci`.
//
// The bundle's first line records a hash of every source file and of package-lock.json;
// tests/test_console.py recomputes it, so a source change without a rebuild fails `make test`.
import { build } from "esbuild";
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";

const here = new URL(".", import.meta.url).pathname;
const out = join(here, "..", "chalicelib", "console", "static");

function files(dir) {
  return readdirSync(dir)
    .flatMap((name) => {
      const path = join(dir, name);
      return statSync(path).isDirectory() ? files(path) : [path];
    })
    .sort();
}

export function sourceHash() {
  const hash = createHash("sha256");
  for (const path of [...files(join(here, "src")), join(here, "package-lock.json")]) {
    hash.update(relative(here, path) + "\0");
    hash.update(readFileSync(path));
    hash.update("\0");
  }
  return hash.digest("hex");
}

const banner = `/* siyu console; sources ${sourceHash()} */`;
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await build({
  entryPoints: { app: join(here, "src", "main.jsx") },
  bundle: true,
  splitting: true, // Chart.js and Ajv load when a page needs them: the first page shows sooner
  chunkNames: "chunk-[hash]",
  minify: true,
  format: "esm",
  target: "es2020", // Safari 14 and Chrome 80 on, the phones store managers carry
  jsx: "automatic",
  jsxImportSource: "preact",
  legalComments: "none",
  outdir: out,
  loader: { ".css": "css" },
  logLevel: "warning",
});
// The sources' hash heads the entry script only: chunks keep their names until their own code changes.
const entry = join(out, "app.js");
writeFileSync(entry, `${banner}\n${readFileSync(entry, "utf8")}`);
copyFileSync(join(here, "src", "index.html"), join(out, "index.html"));
for (const name of readdirSync(out).sort()) {
  const size = statSync(join(out, name)).size;
  console.log(`${name}: ${(size / 1024).toFixed(1)} KiB`);
}
