/**
 * `new Date(ms).toISOString()`, faster: the text up to the second is kept for the second it
 * was last asked for, so a stream of timestamps close together (every run's accept time, and
 * the three to five timestamps of its rows) formats only the milliseconds. toISOString was two
 * of the largest items left in a run's CPU profile.
 */
let cachedSecond = Number.NaN;
let cachedPrefix = '';

export function isoTime(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second !== cachedSecond) {
    const full = new Date(ms).toISOString();
    // outside years 0000 to 9999 toISOString has a longer form: not cached
    if (full.length !== 24) return full;
    cachedSecond = second;
    cachedPrefix = full.slice(0, 20);
  }
  const milli = ms - second * 1000;
  return `${cachedPrefix}${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}Z`;
}
