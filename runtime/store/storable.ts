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
 * its payloads.
 */
export function findUnstorable(v: unknown, path = ''): { path: string; what: string } | null {
  if (typeof v === 'string') {
    const what = unstorable(v);
    return what ? { path, what } : null;
  }
  if (typeof v !== 'object' || v === null) return null;
  for (const [k, x] of Object.entries(v)) {
    const p = `${path}/${k}`;
    const what = unstorable(k);
    if (what) return { path: p, what };
    const found = findUnstorable(x, p);
    if (found !== null) return found;
  }
  return null;
}
