/**
 * Where a JSON value holds a NUL character (in a string or a key), as a JSON pointer
 * ("" for the value itself), or null. PostgreSQL cannot store NUL in text or JSON: the API
 * refuses such input, and the writer stores such output without its payloads.
 */
export function findNul(v: unknown, path = ''): string | null {
  if (typeof v === 'string') return v.includes('\u0000') ? path : null;
  if (typeof v !== 'object' || v === null) return null;
  for (const [k, x] of Object.entries(v)) {
    const p = `${path}/${k}`;
    if (k.includes('\u0000')) return p;
    const found = findNul(x, p);
    if (found !== null) return found;
  }
  return null;
}
