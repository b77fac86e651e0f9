import { describe, expect, it } from 'vitest';
import { allowed, guardedLookup, isPrivateAddress, type OutboundPolicy, type Resolver } from '../../dist/runtime/net/index.js';

/**
 * The http step's outbound guard, as pure logic: no test here opens a connection to anything
 * (the resolver is injected; only the lookup's answer is checked), so a broken guard cannot
 * make a test reach a private or public address.
 */
const closed: OutboundPolicy = { allowHosts: [], allowPrivate: false };

describe('isPrivateAddress', () => {
  it.each([
    '127.0.0.1',
    '127.8.9.10',
    '10.1.2.3',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.1.1',
    '100.64.0.1',
    '169.254.169.254', // cloud metadata
    '0.0.0.0',
    '224.0.0.1',
    '::1',
    '::',
    'fe80::1',
    'fd00:ec2::254', // AWS metadata over IPv6
    'fc00::1',
    '::ffff:10.0.0.1', // IPv4 in IPv6 clothing
    '::ffff:127.0.0.1',
    '64:ff9b::a00:1', // NAT64
    'not-an-address',
  ])('%s is not public', (ip) => {
    expect(isPrivateAddress(ip)).toBe(true);
  });

  it.each(['93.184.216.34', '8.8.8.8', '172.32.0.1', '2606:4700::1111', '::ffff:93.184.216.34'])('%s is public', (ip) => {
    expect(isPrivateAddress(ip)).toBe(false);
  });
});

describe('allowed', () => {
  it('refuses private addresses, unless the host is allowed by name, *.suffix, address or subnet, or allow_private', () => {
    expect(allowed('internal.corp', '10.0.0.5', closed)).toBe(false);
    expect(allowed('internal.corp', '10.0.0.5', { allowHosts: ['internal.corp'], allowPrivate: false })).toBe(true);
    expect(allowed('a.svc.corp', '10.0.0.5', { allowHosts: ['*.svc.corp'], allowPrivate: false })).toBe(true);
    expect(allowed('svc.corp.evil', '10.0.0.5', { allowHosts: ['*.svc.corp'], allowPrivate: false })).toBe(false);
    expect(allowed('x', '10.1.2.3', { allowHosts: ['10.1.0.0/16'], allowPrivate: false })).toBe(true);
    expect(allowed('x', '10.2.0.1', { allowHosts: ['10.1.0.0/16'], allowPrivate: false })).toBe(false);
    expect(allowed('x', '169.254.169.254', { allowHosts: [], allowPrivate: true })).toBe(true);
    expect(allowed('example.com', '93.184.216.34', closed)).toBe(true);
  });
});

describe('guardedLookup', () => {
  const resolver =
    (answers: Record<string, string[]>): Resolver =>
    (host, cb) =>
      cb(
        null,
        (answers[host] ?? []).map((address) => ({ address, family: address.includes(':') ? 6 : 4 })),
      );
  const look = (policy: OutboundPolicy, r: Resolver, host: string, all = false) =>
    new Promise<{ err: (Error & { code?: string }) | null; address: unknown }>((resolve) =>
      guardedLookup(policy, r)(host, { all }, (err, address) => resolve({ err, address })),
    );

  it('hands the socket the address it checked', async () => {
    const r = resolver({ 'api.example.com': ['93.184.216.34'] });
    expect(await look(closed, r, 'api.example.com')).toEqual({ err: null, address: '93.184.216.34' });
  });

  it('refuses a name that resolves to a metadata or private address, or to one among public ones', async () => {
    const r = resolver({ 'evil.example': ['169.254.169.254'], 'mixed.example': ['93.184.216.34', '10.0.0.1'], 'six.example': ['::1'] });
    for (const host of ['evil.example', 'mixed.example', 'six.example']) {
      const res = await look(closed, r, host);
      expect(res.err?.code, host).toBe('E_HTTP_FORBIDDEN_ADDRESS');
      expect(res.err?.message).toContain('steps.http.allow_hosts');
    }
    expect((await look({ allowHosts: ['evil.example'], allowPrivate: false }, r, 'evil.example')).err).toBeNull();
  });
});
