// Validation as you type: the rule files' JSON Schemas (the server's rules/schema/, generated from
// the same models `siyu rules check` uses), with the line and column of each JSON pointer.
import Ajv2020 from "ajv/dist/2020";
import { parse as parseWithPointers } from "json-source-map";

let ajv = null;
const compiled = {};

export function loadSchemas(schemas) {
  ajv = new Ajv2020({ allErrors: true, strict: false, multipleOfPrecision: 6 });
  // The one format the rule files use: a time with its offset (docs/rules.md, starts_at / ends_at).
  ajv.addFormat("date-time", /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$/);
  for (const [name, schema] of Object.entries(schemas)) {
    compiled[name.replace(".schema.json", ".json")] = ajv.compile(schema);
  }
}

function position(text, offset) {
  const before = text.slice(0, offset);
  const line = before.split("\n").length;
  return { line, column: offset - before.lastIndexOf("\n") };
}

function syntaxProblem(file, text, error) {
  const match = /position (\d+)/.exec(error.message);
  const at = match ? position(text, Number(match[1])) : { line: 1, column: 1 };
  return { file, ...at, pointer: "", message: "不是有效的 JSON（检查逗号、引号和括号）" };
}

function sentence(error) {
  const p = error.params || {};
  switch (error.keyword) {
    case "maximum":
      return `不能大于 ${p.limit}`;
    case "minimum":
      return `不能小于 ${p.limit}`;
    case "exclusiveMinimum":
      return `必须大于 ${p.limit}`;
    case "exclusiveMaximum":
      return `必须小于 ${p.limit}`;
    case "maxLength":
      return `最多 ${p.limit} 个字符`;
    case "minLength":
      return p.limit === 1 ? "不能为空" : `至少 ${p.limit} 个字符`;
    case "maxItems":
      return `最多 ${p.limit} 项`;
    case "minItems":
      return `至少 ${p.limit} 项`;
    case "multipleOf":
      return `最多两位小数`;
    case "type":
      return `类型应为 ${{ number: "数字", integer: "整数", string: "文字（加双引号）", boolean: "true 或 false", array: "列表 [ ]", object: "对象 { }", null: "null" }[p.type] || p.type}`;
    case "enum":
      return `只能是 ${p.allowedValues.join("、")} 之一`;
    case "const":
      return `只能是 ${p.allowedValue}`;
    case "pattern":
      return `格式不对`;
    case "required":
      return `缺少 ${p.missingProperty}`;
    case "additionalProperties":
      return `“${p.additionalProperty}” 不是 siyu 认识的设置`;
    default:
      return error.message;
  }
}

// Every problem of one file: [{file, line, column, pointer, message}], sorted by line.
export function validateFile(file, text) {
  let parsed;
  try {
    parsed = parseWithPointers(text);
  } catch (error) {
    return [syntaxProblem(file, text, error)];
  }
  const check = compiled[file];
  if (!check || check(parsed.data)) return [];
  const seen = new Set();
  const problems = [];
  for (const error of check.errors) {
    if (error.keyword === "anyOf" || error.keyword === "oneOf" || error.keyword === "if") continue;
    let pointer = error.instancePath;
    if (error.keyword === "additionalProperties") pointer += `/${error.params.additionalProperty}`;
    const entry = parsed.pointers[pointer] || parsed.pointers[error.instancePath] || parsed.pointers[""];
    const where = error.keyword === "additionalProperties" && entry.key ? entry.key : entry.value;
    const problem = { file, line: where.line + 1, column: where.column + 1, pointer: pointer || "/", message: sentence(error) };
    const key = `${problem.pointer} ${problem.message}`;
    if (!seen.has(key)) {
      seen.add(key);
      problems.push(problem);
    }
  }
  return problems.sort((a, b) => a.line - b.line || a.column - b.column);
}
