/** A UTF-16 surrogate without its pair: JSON.stringify writes it as a \\uD8xx escape PostgreSQL's JSON refuses. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, 'g');

/**
 * Text a PostgreSQL text column takes: a NUL character (which text cannot hold) and a lone
 * UTF-16 surrogate (which a UTF-8 encoder writes as U+FFFD, and PostgreSQL's JSON refuses as an
 * escape) become U+FFFD. For the free-text columns (error messages, stacks, codes), whose text
 * comes from whatever a step threw: an error is recorded with a character replaced rather than
 * refused. The same string comes back when there is nothing to replace.
 */
export function storableText(s: string): string {
  if (unstorable(s) === null) return s;
  return s.replaceAll('\u0000', '\ufffd').replace(LONE_SURROGATES, '\ufffd');
}

/** What PostgreSQL cannot store in a JSON value's strings (or keys), or null. */
function unstorable(s: string): string | null {
  if (s.includes('\u0000')) return 'a NUL character (\\u0000)';
  if (LONE_SURROGATE.test(s)) return 'a lone UTF-16 surrogate (half of a \\uD8xx\\uDCxx pair)';
  return null;
}

/**
 * Where a JSON value holds text PostgreSQL cannot store in JSON (a NUL character or a lone
 * UTF-16 surrogate, in a string or a key) or a BigInt (a step's int64 through msgpack, which
 * JSON.stringify throws on), as a JSON pointer ("" for the value itself) and
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
  if (typeof v === 'bigint') return 'a BigInt, which JSON cannot hold';
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
