import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { Agent, fetch as undiciFetch, type RequestInit, type Response } from 'undici';
import { RuntimeError } from '../errors/index.js';

/** Where the `http` step may go (`steps.http` in the config). */
export interface OutboundPolicy {
  /** host names (`api.example.com`, `*.example.com` for its subdomains) or subnets (`10.1.0.0/16`) reachable even when private */
  allowHosts: readonly string[];
  /** reach loopback, private, link-local and metadata addresses too */
  allowPrivate: boolean;
}

export const DEFAULT_POLICY: OutboundPolicy = { allowHosts: [], allowPrivate: false };

/**
 * Addresses a workflow author must not reach by default: this host (loopback), the private
 * networks around it (RFC 1918, carrier-grade NAT, unique-local), link-local (where cloud
 * metadata services answer: 169.254.169.254, fd00:ec2::254), and the unroutable rest. IPv4
 * addresses mapped into IPv6 (::ffff:10.0.0.1) are checked as IPv4.
 */
const PRIVATE = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  PRIVATE.addSubnet(net, bits, 'ipv4');
}
for (const [net, bits] of [
  ['::', 128],
  ['::1', 128],
  ['64:ff9b::', 96], // NAT64: an IPv4 address in disguise, possibly a private one
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const) {
  PRIVATE.addSubnet(net, bits, 'ipv6');
}

/** Whether an IP address is loopback, private, link-local, metadata or otherwise not public. */
export function isPrivateAddress(ip: string): boolean {
  const family = isIP(ip);
  if (family === 0) return true; // not an address: never reachable by mistake
  return PRIVATE.check(ip, family === 4 ? 'ipv4' : 'ipv6');
}

/** Whether the policy lets `host` (a name or a literal address) reach `address`. */
export function allowed(host: string, address: string, policy: OutboundPolicy): boolean {
  if (policy.allowPrivate || !isPrivateAddress(address)) return true;
  const name = host.toLowerCase().replace(/\.$/, '');
  return policy.allowHosts.some((entry) => {
    const e = entry.toLowerCase();
    if (e.includes('/')) return inSubnet(address, e);
    if (e.startsWith('*.')) return name.endsWith(e.slice(1));
    return name === e || address === e;
  });
}

function inSubnet(address: string, cidr: string): boolean {
  const [net, bits] = cidr.split('/');
  const family = isIP(net ?? '');
  if (!family || !Number.isInteger(Number(bits))) return false;
  const b = new BlockList();
  b.addSubnet(net, Number(bits), family === 4 ? 'ipv4' : 'ipv6');
  return b.check(address, isIP(address) === 4 ? 'ipv4' : 'ipv6');
}

function forbidden(host: string, address: string): RuntimeError {
  return new RuntimeError(
    'E_HTTP_FORBIDDEN_ADDRESS',
    `the http step may not reach ${host}${host === address ? '' : ` (${address})`}: a loopback, private, link-local or metadata address. ` +
      'Allow it with steps.http.allow_hosts (a host name or subnet) or steps.http.allow_private',
  );
}

export type Resolver = (host: string, cb: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void) => void;

const systemResolver: Resolver = (host, cb) => dnsLookup(host, { all: true }, cb);

/**
 * A `lookup` for the sockets of the http step: resolves the name, refuses it when any of its
 * addresses is out of the policy, and hands the socket the address it checked, so the
 * connection goes exactly there (a DNS answer that changes between a check and the connect,
 * DNS rebinding, cannot slip past).
 */
export function guardedLookup(policy: OutboundPolicy, resolve: Resolver = systemResolver) {
  return (
    host: string,
    options: { family?: number | string; all?: boolean },
    cb: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
  ): void => {
    resolve(host, (err, addresses) => {
      if (err) return cb(err, '', 0);
      const bad = addresses.find((a) => !allowed(host, a.address, policy));
      if (bad) return cb(Object.assign(forbidden(host, bad.address), { code: 'E_HTTP_FORBIDDEN_ADDRESS' }), '', 0);
      if (!addresses.length) return cb(Object.assign(new Error(`${host} has no address`), { code: 'ENOTFOUND' }), '', 0);
      if (options.all) return cb(null, addresses);
      // IPv4 first, as `dns.lookup` used to order them: a server listening on 127.0.0.1 only is reached
      const first = addresses.find((a) => a.family === 4) ?? addresses[0];
      cb(null, first.address, first.family);
    });
  };
}

const MAX_REDIRECTS = 5;

/**
 * fetch, within the policy: a literal address in the URL is checked before anything is sent,
 * a name when its socket connects (guardedLookup), and each redirect is followed by hand, so
 * its target is checked too. Throws E_HTTP_FORBIDDEN_ADDRESS (not retried).
 */
export async function guardedFetch(url: string, init: RequestInit, policy: OutboundPolicy, resolve?: Resolver): Promise<Response> {
  const agent = new Agent({ connect: { lookup: guardedLookup(policy, resolve) } });
  try {
    let target = new URL(url);
    for (let hop = 0; ; hop++) {
      const host = target.hostname.replace(/^\[|\]$/g, '');
      if (isIP(host) && !allowed(host, host, policy)) throw forbidden(host, host);
      let res: Response;
      try {
        res = await undiciFetch(target, { ...init, redirect: 'manual', dispatcher: agent });
      } catch (err) {
        const cause = (err as { cause?: unknown }).cause;
        if (cause instanceof Error && (cause as { code?: string }).code === 'E_HTTP_FORBIDDEN_ADDRESS') throw cause;
        throw err;
      }
      const location = res.headers.get('location');
      if (res.status < 300 || res.status >= 400 || !location || hop >= MAX_REDIRECTS) return res;
      await res.body?.cancel();
      target = new URL(location, target);
      // a 303 (and a 301/302 after a POST, as browsers do) goes on as a GET without a body
      if (
        res.status === 303 ||
        ((res.status === 301 || res.status === 302) && init.method && init.method !== 'GET' && init.method !== 'HEAD')
      ) {
        init = { ...init, method: 'GET', body: undefined };
      }
    }
  } finally {
    void agent.close();
  }
}
