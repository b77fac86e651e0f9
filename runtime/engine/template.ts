/**
 * The template syntax of data references (a step's `config` and `input`, a map's `items`,
 * `transform`'s template): any JSON value whose strings may hold `{{ path }}`.
 *
 * - A string that is exactly one `{{ path }}` becomes the value at that path,
 *   keeping its type (object, number, ...); a missing path gives `null`.
 * - `{{ path }}` inside a longer string is replaced by the value as text
 *   (objects as JSON, missing as the empty string).
 * - A path is dot-separated names and `[n]` indexes from the root object:
 *   `input.order.items[0].sku`, `steps.validate.currency`, `run.input.id`.
 * - `{{ path | default: "x" }}` gives "x" (a JSON literal) when the value is missing.
 * - `{{ path | url }}` percent-encodes the value for a URL path or query (`encodeURIComponent`).
 *
 * No expressions and no `eval`: a path can only read own properties (so
 * `items.length` works, `constructor` or `__proto__` give nothing).
 */
export function renderTemplate(template: unknown, root: Record<string, unknown>): unknown {
  if (typeof template === 'string') return renderString(template, root);
  if (Array.isArray(template)) return template.map((t) => renderTemplate(t, root));
  if (template && typeof template === 'object') {
    return Object.fromEntries(Object.entries(template).map(([k, v]) => [k, renderTemplate(v, root)]));
  }
  return template;
}

/** Whether a value holds any `{{ }}` (so that rendering can be skipped when it holds none). */
export function hasTemplate(template: unknown): boolean {
  if (typeof template === 'string') return template.includes('{{');
  if (Array.isArray(template)) return template.some(hasTemplate);
  if (template && typeof template === 'object') return Object.values(template).some(hasTemplate);
  return false;
}

/** Every path a template reads, e.g. ["steps.price.total_cents", "run.input.id"]; throws TemplateError on a bad one. */
export function templatePaths(template: unknown): string[] {
  const out: string[] = [];
  const walk = (t: unknown): void => {
    if (typeof t === 'string') {
      for (const m of t.matchAll(PART)) {
        const [path, ...filters] = m[1].split('|').map((p) => p.trim());
        checkPath(path);
        for (const f of filters) evaluate(`x | ${f}`, {});
        out.push(path);
      }
    } else if (Array.isArray(t)) t.forEach(walk);
    else if (t && typeof t === 'object') Object.values(t).forEach(walk);
  };
  walk(template);
  return out;
}

const WHOLE = /^\{\{\s*([^}]+?)\s*\}\}$/;
const PART = /\{\{\s*([^}]+?)\s*\}\}/g;

function renderString(s: string, root: Record<string, unknown>): unknown {
  const whole = WHOLE.exec(s);
  if (whole) return evaluate(whole[1], root) ?? null;
  return s.replace(PART, (_, expr: string) => {
    const v = evaluate(expr, root);
    if (v === undefined || v === null) return '';
    return asText(v);
  });
}

/** A JSON value as text inside a longer string: strings as they are, anything else as JSON (5, true, {"a":1}). */
function asText(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function evaluate(expr: string, root: Record<string, unknown>): unknown {
  const [path, ...filters] = expr.split('|').map((p) => p.trim());
  let value = lookup(path, root);
  for (const f of filters) {
    if (f === 'url') {
      value = value === undefined || value === null ? value : encodeURIComponent(asText(value));
      continue;
    }
    const m = /^default\s*:\s*(.+)$/.exec(f);
    if (!m) throw new TemplateError(`unknown filter "${f}" in {{ ${expr} }}; the filters are "default: <JSON>" and "url"`);
    if (value === undefined || value === null) {
      try {
        value = JSON.parse(m[1]);
      } catch {
        throw new TemplateError(`the default in {{ ${expr} }} must be a JSON literal such as "text", 0 or null`);
      }
    }
  }
  return value;
}

const SEGMENT = /^([A-Za-z_$][\w$-]*)((?:\[\d+\])*)$/;

function checkPath(path: string, parts = path.split('.')): void {
  for (const part of parts) {
    if (!SEGMENT.test(part)) throw new TemplateError(`"${path}" is not a path: use names and [n] indexes separated by dots`);
  }
}

/** The value at a template path (`steps.price.total_cents`), or undefined; own properties only. */
export function readPath(path: string, root: Record<string, unknown>): unknown {
  return lookup(path, root);
}

function lookup(path: string, root: Record<string, unknown>): unknown {
  const parts = path.split('.');
  checkPath(path, parts); // a bad path fails even where an earlier name is missing
  let cur: unknown = root;
  for (const part of parts) {
    const m = SEGMENT.exec(part)!;
    cur = own(cur, m[1]);
    for (const idx of m[2].matchAll(/\[(\d+)\]/g)) cur = Array.isArray(cur) ? cur[Number(idx[1])] : undefined;
    if (cur === undefined) return undefined;
  }
  return cur;
}

/** Own properties only: a template cannot reach `constructor`, `__proto__` and the like. */
function own(obj: unknown, key: string): unknown {
  return obj !== null && typeof obj === 'object' && Object.prototype.hasOwnProperty.call(obj, key)
    ? (obj as Record<string, unknown>)[key]
    : undefined;
}

/** A template that cannot be read or rendered: E_STEP_CONFIG, which the catalogue never retries. */
export class TemplateError extends Error {
  readonly code = 'E_STEP_CONFIG';
}
