/** A UTF-16 surrogate without its pair: JSON.stringify writes it as a \\uD8xx escape PostgreSQL's JSON refuses. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** What PostgreSQL cannot store in a JSON value's strings (or keys), or null. */
function unstorable(s: string): string | null {
  if (s.includes('\u0000')) return 'a NUL character (\\u0000)';
  if (LONE_SURROGATE.test(s)) return 'a lone UTF-16 surrogate (half of a \\uD8xx\\uDCxx pair)';
  return null;
}

/**
 * Where a JSON value holds text PostgreSQL cannot store in JSON (a NUL character or a lone
 * UTF-16 surrogate, in a string or a key), as a JSON pointer ("" for the value itself) and
 * what it is, or null. The API refuses such input, and the writer stores such output without
 * its payloads. Every payload of every run passes here, so the pointer is built only on a find.
 */
export function findUnstorable(v: unknown, path = ''): { path: string; what: string } | null {
  const keys: string[] = [];
  const what = scan(v, keys);
  return what === null
    ? null
    : {
        path:
          path +
          keys
            .reverse()
            .map((k) => `/${k}`)
            .join(''),
        what,
      };
}

/** What is unstorable in `v`, with the keys to it pushed onto `keys` innermost first. */
function scan(v: unknown, keys: string[]): string | null {
  if (typeof v === 'string') return unstorable(v);
  if (typeof v !== 'object' || v === null) return null;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const what = scan(v[i], keys);
      if (what !== null) return (keys.push(String(i)), what);
    }
    return null;
  }
  for (const k in v) {
    if (!Object.prototype.hasOwnProperty.call(v, k)) continue;
    const what = unstorable(k) ?? scan((v as Record<string, unknown>)[k], keys);
    if (what !== null) return (keys.push(k), what);
  }
  return null;
}
