// 规则: the active version and its history; edit a rule file with validation as you type (the JSON
// Schemas here, then `siyu rules check` on the server, both with line and pointer); preview the
// impact over the last N days; publish (If-Match: the version you started from — a conflict is
// shown and your text kept); diff two versions; roll back.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { api } from "../api.js";
import { CAUSE, label, when, yuan } from "../format.js";
import { Status, useApi } from "../hooks.jsx";
import { Table } from "../table.jsx";

// Ajv and the schemas' validators: their own chunk, fetched when this page first opens.
let validator = null;

function Editor({ name, text, problems, onChange, jump }) {
  const area = useRef(null);
  const gutter = useRef(null);
  const lines = text.split("\n").length;
  const bad = new Set(problems.map((p) => p.line));
  useEffect(() => {
    if (!jump || !area.current) return;
    const offset = text.split("\n").slice(0, jump.line - 1).join("\n").length + (jump.line > 1 ? 1 : 0) + jump.column - 1;
    area.current.focus();
    area.current.setSelectionRange(offset, offset);
    area.current.scrollTop = Math.max(0, (jump.line - 4) * 20);
  }, [jump]);
  return (
    <div class="editor">
      <div class="gutter" ref={gutter} aria-hidden="true">
        {Array.from({ length: lines }, (_, i) => (
          <div class={bad.has(i + 1) ? "bad" : ""} key={i}>
            {i + 1}
          </div>
        ))}
      </div>
      <textarea
        ref={area}
        name="rule-text"
        aria-label={`编辑 ${name}`}
        spellcheck={false}
        value={text}
        onInput={(e) => onChange(e.currentTarget.value)}
        onScroll={(e) => {
          gutter.current.scrollTop = e.currentTarget.scrollTop;
        }}
      />
    </div>
  );
}

function ProblemList({ title, problems, onPick, testId }) {
  if (!problems.length) return null;
  return (
    <div class="problems" data-test={testId}>
      <h3>{title}</h3>
      <ul>
        {problems.map((p, i) => (
          <li key={i}>
            <button class="link" onClick={() => onPick(p)}>
              {p.file}:{p.line}:{p.column}
            </button>{" "}
            <code>{p.pointer || "/"}</code> {p.message}
          </li>
        ))}
      </ul>
    </div>
  );
}

function PreviewTable({ preview }) {
  const pair = (a, c, f = (x) => x) => (a === c ? f(a) : `${f(a)} → ${f(c)}`);
  return (
    <div class="preview" data-test="preview">
      <h3>
        影响预览（近{preview.days}天，{preview.events} 个事件；{preview.active_version} → 草稿）
      </h3>
      <Table
        rows={preview.rows}
        cols={[
          ["职责", (r) => label(CAUSE, r.duty)],
          ["门店", (r) => r.store],
          ["会员", (r) => pair(r.active.members, r.candidate.members)],
          ["券", (r) => pair(r.active.coupons, r.candidate.coupons)],
          ["券面值", (r) => pair(r.active.face_value_fen, r.candidate.face_value_fen, yuan)],
          ["消息", (r) => pair(r.active.messages, r.candidate.messages)],
          ["消息花费", (r) => pair(r.active.message_cost_fen, r.candidate.message_cost_fen, yuan)],
        ]}
        empty="这些事件在两套规则下都不会触发任何职责。"
      />
    </div>
  );
}

function changedFiles(a, b) {
  return Object.keys({ ...a, ...b }).filter((n) => a[n] !== b[n]);
}

function Workbench({ shown, me, onPublished, onConflict }) {
  const [base, setBase] = useState({ version: shown.active, files: shown.files });
  const [draft, setDraft] = useState({ ...shown.files });
  const names = Object.keys(draft).sort();
  const [file, setFile] = useState(names.includes("welcome.json") ? "welcome.json" : names[0]);
  const [server, setServer] = useState([]);
  const [jump, setJump] = useState(null);
  const [days, setDays] = useState(7);
  const [note, setNote] = useState("");
  const [preview, setPreview] = useState(null);
  const [message, setMessage] = useState("");
  const [conflict, setConflict] = useState(null);
  const local = useMemo(() => validator.validateFile(file, draft[file] || ""), [file, draft[file]]);
  const edited = changedFiles(base.files, draft);

  useEffect(() => {
    const timer = setTimeout(() => {
      api("rules/check", { method: "POST", body: { files: draft } })
        .then((r) => setServer(r.problems))
        .catch(() => {});
    }, 500);
    return () => clearTimeout(timer);
  }, [draft]);

  const pick = (p) => {
    if (draft[p.file] !== undefined) setFile(p.file);
    setJump({ ...p, at: Date.now() });
  };
  const runPreview = async () => {
    setMessage("正在预览…");
    try {
      setPreview(await api("rules/preview", { method: "POST", body: { files: draft, days } }));
      setMessage("");
    } catch (e) {
      setMessage(e.message);
      if (e.data.problems) setServer(e.data.problems);
    }
  };
  const publish = async () => {
    try {
      const r = await api("rules", { method: "PUT", body: { note, files: draft }, headers: { "If-Match": base.version } });
      onPublished(r.changed ? `已发布并启用 ${r.active}（原 ${r.previous || "内置规则"}）` : `内容与 ${r.active} 相同，未发布新版本`);
    } catch (e) {
      if (e.status === 409) {
        const latest = await api("rules");
        setConflict({ latest, theirs: changedFiles(base.files, latest.files) });
        setMessage("");
        onConflict();
      } else {
        setMessage(e.message);
        if (e.data.problems) setServer(e.data.problems);
      }
    }
  };
  // Rebase on the version someone else published: their files where you changed nothing, yours
  // where you did. Files both of you changed are listed: look at them before publishing again.
  const rebase = () => {
    const merged = { ...conflict.latest.files };
    for (const n of edited) merged[n] = draft[n];
    setBase({ version: conflict.latest.active, files: conflict.latest.files });
    setDraft(merged);
    setConflict(null);
  };

  return (
    <section class="card">
      <h2>
        编辑规则（基于 {base.version}）{edited.length > 0 && <span class="badge yellow">已修改：{edited.join("、")}</span>}
      </h2>
      {conflict && (
        <div class="conflict" role="alert" data-test="conflict">
          <p>
            <b>发布冲突：</b>你编辑期间，{conflict.latest.activated_by || "他人"} 已启用 {conflict.latest.active}（
            {when(conflict.latest.activated_at)}）。你的修改没有写入，仍保留在编辑器中。
          </p>
          <p>
            对方改动的文件：{conflict.theirs.join("、") || "无"}；你改动的文件：{edited.join("、") || "无"}
            {conflict.theirs.filter((n) => edited.includes(n)).length > 0 &&
              `；双方都改了：${conflict.theirs.filter((n) => edited.includes(n)).join("、")}，请核对后再发布`}
          </p>
          <button onClick={rebase}>在 {conflict.latest.active} 的基础上保留我的修改</button>
        </div>
      )}
      <div class="files">
        {names.map((n) => (
          <button class={n === file ? "on" : ""} onClick={() => setFile(n)} key={n} data-file={n}>
            {n}
            {draft[n] !== base.files[n] ? " •" : ""}
          </button>
        ))}
      </div>
      <Editor
        name={file}
        text={draft[file] || ""}
        problems={[...local, ...server.filter((p) => p.file === file)]}
        onChange={(text) => {
          setDraft({ ...draft, [file]: text });
          setPreview(null);
        }}
        jump={jump && jump.file === file ? jump : null}
      />
      {local.length === 0 && server.length === 0 && <p class="ok small">检查通过：没有问题。</p>}
      <ProblemList title="即时检查（JSON Schema）" problems={local} onPick={pick} testId="local-problems" />
      <ProblemList title="siyu rules check" problems={server} onPick={pick} testId="server-problems" />
      <div class="row">
        <button
          onClick={() => setDraft({ ...draft, [file]: base.files[file] })}
          disabled={draft[file] === base.files[file]}
        >
          撤销此文件的修改
        </button>
        <select value={days} onChange={(e) => setDays(Number(e.currentTarget.value))} aria-label="预览天数" name="preview-days">
          {[1, 7, 14, 30].map((d) => (
            <option value={d} key={d}>
              近{d}天
            </option>
          ))}
        </select>
        <button onClick={runPreview} data-action="preview">
          预览影响
        </button>
      </div>
      {preview && <PreviewTable preview={preview} />}
      {me.can_publish ? (
        <div class="row">
          <input name="note" value={note} onInput={(e) => setNote(e.currentTarget.value)} placeholder="发布说明（必填，例如：新人券改为12.5元）" />
          <button class="primary" onClick={publish} disabled={!preview || !note.trim() || server.length > 0} data-action="publish">
            发布
          </button>
        </div>
      ) : (
        <p class="small muted">店长可以编辑和预览，发布需由运营操作。</p>
      )}
      {me.can_publish && !preview && <p class="small muted">发布前请先预览影响。</p>}
      {message && (
        <p class="notice" role="status">
          {message}
        </p>
      )}
    </section>
  );
}

function History({ shown, me, onChanged }) {
  const [a, setA] = useState("");
  const [b, setB] = useState("");
  const [diff, setDiff] = useState(null);
  const [message, setMessage] = useState("");
  const versions = [...shown.versions].reverse();
  const showDiff = async () => {
    try {
      setDiff(await api(`rules/diff?a=${a}&b=${b}`));
    } catch (e) {
      setMessage(e.message);
    }
  };
  const rollback = async (v) => {
    if (!confirm(`回滚：启用 ${v}（当前 ${shown.active}）？`)) return;
    try {
      const r = await api(`rules/${v}/activate`, { method: "POST", body: { note: `运营台回滚到 ${v}` }, headers: { "If-Match": shown.active } });
      onChanged(`已回滚：启用 ${r.active}（原 ${r.previous}）`);
    } catch (e) {
      setMessage(e.message);
    }
  };
  return (
    <section class="card">
      <h2>版本历史（当前启用 {shown.active}）</h2>
      <Table
        rows={versions}
        cols={[
          ["版本", (v) => (v.version === shown.active ? <b>{v.version}（启用中）</b> : v.version)],
          ["时间", (v) => when(v.created_at)],
          ["发布人", (v) => v.author],
          ["说明", (v) => v.note],
          [
            "",
            (v) =>
              me.can_publish && v.version !== shown.active ? (
                <button onClick={() => rollback(v.version)} data-rollback={v.version}>
                  回滚到此版本
                </button>
              ) : null,
          ],
        ]}
        empty="还没有发布过版本（正在使用内置规则）。"
      />
      <div class="row">
        <select value={a} onChange={(e) => setA(e.currentTarget.value)} aria-label="对比版本 A" name="diff-a">
          <option value="">版本 A</option>
          {versions.map((v) => (
            <option key={v.version}>{v.version}</option>
          ))}
        </select>
        <select value={b} onChange={(e) => setB(e.currentTarget.value)} aria-label="对比版本 B" name="diff-b">
          <option value="">版本 B</option>
          {versions.map((v) => (
            <option key={v.version}>{v.version}</option>
          ))}
        </select>
        <button onClick={showDiff} disabled={!a || !b} data-action="diff">
          对比
        </button>
      </div>
      {diff && (
        <pre class="diff" data-test="diff">
          {diff.diff
            ? diff.diff.split("\n").map((line, i) => (
                <div class={line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : ""} key={i}>
                  {line}
                </div>
              ))
            : `${diff.a} 与 ${diff.b} 内容相同`}
        </pre>
      )}
      <h3>启用记录</h3>
      <Table
        rows={shown.activations}
        cols={[
          ["时间", (x) => when(x.at)],
          ["操作", (x) => (x.reason === "rollback" ? "回滚" : "发布")],
          ["版本", (x) => `${x.previous || "内置"} → ${x.version}`],
          ["操作人", (x) => x.author],
          ["说明", (x) => x.note],
        ]}
        empty="没有启用记录。"
      />
      {message && (
        <p class="notice" role="status">
          {message}
        </p>
      )}
    </section>
  );
}

export function Rules({ me }) {
  const shown = useApi("rules");
  const schemas = useApi("rules/schemas");
  const [generation, setGeneration] = useState(0);
  const [published, setPublished] = useState("");
  const [compiled, setCompiled] = useState(false);
  useEffect(() => {
    if (!schemas.data) return;
    const { httpStatus, ...bySchema } = schemas.data;
    import("../validate.js").then((module) => {
      module.loadSchemas(bySchema);
      validator = module;
      setCompiled(true);
    });
  }, [schemas.data]);
  const ready = shown.data && compiled;
  // After your own publish or rollback the editor starts again from the new active version, once it
  // has been read; after a conflict only the history is read again (the editor keeps your text).
  const [restart, setRestart] = useState(false);
  useEffect(() => {
    if (restart && !shown.loading) {
      setRestart(false);
      setGeneration((g) => g + 1);
    }
  }, [shown.data, shown.loading]);
  const changed = (text) => {
    setPublished(typeof text === "string" ? text : "");
    setRestart(true);
    shown.reload();
  };
  const conflicted = () => {
    setPublished("");
    shown.reload();
  };
  return (
    <div>
      <Status state={shown} />
      <Status state={schemas} />
      {published && (
        <p class="notice" role="status" data-test="published">
          {published}
        </p>
      )}
      {ready && (
        <>
          <Workbench shown={shown.data} me={me} onPublished={changed} onConflict={conflicted} key={generation} />
          <History shown={shown.data} me={me} onChanged={changed} />
        </>
      )}
    </div>
  );
}
