import { describe, expect, it } from 'vitest';
import { Authenticator, parseApiKeys } from '../../dist/runtime/api/index.js';

const K1 = 'a'.repeat(20) + '1';
const K2 = 'b'.repeat(20) + '2';
const code = (fn: () => unknown) => {
  try {
    fn();
    return 'passed';
  } catch (err) {
    return (err as { code?: string }).code;
  }
};

describe('parseApiKeys', () => {
  it('reads [name=]key[:scope+scope], comma-separated; a key without scopes has all three', () => {
    const keys = parseApiKeys(` ci=${K1}:execute+read , ${K2} `);
    expect(keys.map((k) => [k.name, [...k.scopes].sort()])).toEqual([
      ['ci', ['execute', 'read']],
      ['key-2', ['admin', 'execute', 'read']],
    ]);
    expect(parseApiKeys('')).toEqual([]);
  });

  it('keeps only SHA-256 digests: the key itself is nowhere in what it returns', () => {
    const keys = parseApiKeys(`ci=${K1}`);
    expect(keys[0].digest).toHaveLength(32);
    expect(JSON.stringify(keys)).not.toContain(K1);
    expect(JSON.stringify(keys.map((k) => k.digest.toString('hex')))).not.toContain(K1);
  });

  it('refuses unknown scopes, short keys, odd names and a name used twice, naming the entry and never the key', () => {
    for (const spec of [`x=${K1}:write`, 'short=abc', `bad name=${K1}`, `a=${K1},a=${K2}`, `x=${K1}:`]) {
      let message = '';
      try {
        parseApiKeys(spec);
      } catch (err) {
        message = (err as Error).message;
        expect((err as { code?: string }).code).toBe('E_CONFIG');
      }
      expect(message, spec).toMatch(/API key \d/);
      expect(message).not.toContain(K1);
    }
  });
});

describe('Authenticator', () => {
  const auth = new Authenticator(parseApiKeys(`admin=${K1}, reader=${K2}:read`));

  it('lets a known key with the scope through, and names the caller', () => {
    expect(auth.authorize(`Bearer ${K1}`, 'admin')).toMatchObject({ name: 'admin' });
    expect(auth.authorize(`bearer ${K2}`, 'read')).toMatchObject({ name: 'reader' });
  });

  it('401 without a key or with an unknown one, 403 without the scope', () => {
    expect(code(() => auth.authorize('', 'read'))).toBe('E_UNAUTHENTICATED');
    expect(code(() => auth.authorize(`Basic ${K1}`, 'read'))).toBe('E_UNAUTHENTICATED');
    expect(code(() => auth.authorize(`Bearer ${K1}x`, 'read'))).toBe('E_UNAUTHENTICATED');
    expect(code(() => auth.authorize(`Bearer ${K2}`, 'execute'))).toBe('E_FORBIDDEN');
    expect(code(() => auth.authorize(`Bearer ${K2}`, 'admin'))).toBe('E_FORBIDDEN');
  });

  it('is open when no key is configured', () => {
    const open = new Authenticator([]);
    expect(open.open).toBe(true);
    expect(open.authorize('', 'admin')).toBeNull();
  });
});
