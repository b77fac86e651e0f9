import { createHash, timingSafeEqual } from 'node:crypto';
import { RuntimeError } from '../errors/index.js';

/** What a key may do: `admin` (workflows, schedules, keys), `execute` (start, signal, cancel, retry, events), `read`. */
export type Scope = 'admin' | 'execute' | 'read';
export const SCOPES: readonly Scope[] = ['admin', 'execute', 'read'];

export interface ApiKey {
  name: string;
  /** SHA-256 of the key: the key itself is never kept */
  digest: Buffer;
  scopes: ReadonlySet<Scope>;
}

/** Keys shorter than this are refused: they could be guessed. */
const MIN_KEY_LENGTH = 16;

/**
 * Reads `API_KEYS` / `auth.api_keys`: comma-separated entries `[name=]key[:scope+scope]`,
 * e.g. `ci=4f9c…e1:execute+read, admin=9a0b…77`. A key without a scope list has all three;
 * one without a name is called `key-<n>`. Several keys at once allow rotation. Errors name the
 * entry by its position and name, never by the key.
 */
export function parseApiKeys(spec: string): ApiKey[] {
  const entries = spec
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean);
  const keys: ApiKey[] = [];
  entries.forEach((entry, i) => {
    const eq = entry.indexOf('=');
    const name = eq > 0 ? entry.slice(0, eq).trim() : `key-${i + 1}`;
    let rest = eq > 0 ? entry.slice(eq + 1) : entry;
    let scopes: Scope[] = [...SCOPES];
    const colon = rest.lastIndexOf(':');
    if (colon >= 0) {
      const list = rest
        .slice(colon + 1)
        .split('+')
        .map((s) => s.trim());
      rest = rest.slice(0, colon);
      const unknown = list.filter((s) => !(SCOPES as readonly string[]).includes(s));
      if (unknown.length || !list.length) {
        throw new RuntimeError(
          'E_CONFIG',
          `API key ${i + 1} ("${name}"): unknown scope ${JSON.stringify(unknown.join('+'))}; the scopes are ${SCOPES.join(', ')}`,
        );
      }
      scopes = list as Scope[];
    }
    const key = rest.trim();
    if (!/^[A-Za-z0-9_-]+$/.test(name))
      throw new RuntimeError('E_CONFIG', `API key ${i + 1}: the name "${name}" may hold letters, digits, _ and - only`);
    if (key.length < MIN_KEY_LENGTH) {
      throw new RuntimeError(
        'E_CONFIG',
        `API key ${i + 1} ("${name}") is shorter than ${MIN_KEY_LENGTH} characters; use a random one, e.g. openssl rand -hex 32`,
      );
    }
    if (keys.some((k) => k.name === name)) throw new RuntimeError('E_CONFIG', `API key ${i + 1}: the name "${name}" is used twice`);
    keys.push({ name, digest: digest(key), scopes: new Set(scopes) });
  });
  return keys;
}

function digest(key: string): Buffer {
  return createHash('sha256').update(key).digest();
}

/** Who is calling: the key's name and scopes, or null (no keys configured: the API is open). */
export type Caller = { name: string; scopes: ReadonlySet<Scope> } | null;

/**
 * Checks `Authorization: Bearer <key>` against the configured keys. The presented key is
 * hashed and compared with every digest in constant time, so neither the comparison nor the
 * position of a match leaks anything. With no keys configured, every request passes.
 */
export class Authenticator {
  constructor(private readonly keys: readonly ApiKey[]) {}

  get open(): boolean {
    return this.keys.length === 0;
  }

  get names(): string[] {
    return this.keys.map((k) => k.name);
  }

  /** The caller, or throws E_UNAUTHENTICATED (no or unknown key) / E_FORBIDDEN (the key lacks `scope`). */
  authorize(authorization: string, scope: Scope): Caller {
    if (this.open) return null;
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!m) {
      throw new RuntimeError('E_UNAUTHENTICATED', 'this API needs a key: send the header "Authorization: Bearer <key>"');
    }
    const presented = digest(m[1]);
    let found: ApiKey | null = null;
    for (const k of this.keys) if (timingSafeEqual(k.digest, presented) && !found) found = k;
    if (!found)
      throw new RuntimeError(
        'E_UNAUTHENTICATED',
        'the API key is not one this server knows (revoked, mistyped, or for another deployment)',
      );
    if (!found.scopes.has(scope)) {
      throw new RuntimeError(
        'E_FORBIDDEN',
        `the API key "${found.name}" may not do this: it needs the "${scope}" scope (it has ${[...found.scopes].join(', ')})`,
        {
          needed: scope,
          key: found.name,
        },
      );
    }
    return { name: found.name, scopes: found.scopes };
  }
}
