import { DEFAULT_POLICY, type OutboundPolicy } from './guard.js';

export { allowed, guardedFetch, guardedLookup, isPrivateAddress, DEFAULT_POLICY, type OutboundPolicy, type Resolver } from './guard.js';

let current: OutboundPolicy = DEFAULT_POLICY;

/** The policy of this thread's http steps: set once per worker thread from the executor's config. */
export function setOutboundPolicy(p: OutboundPolicy): void {
  current = Object.freeze({ allowHosts: [...p.allowHosts], allowPrivate: p.allowPrivate });
}

export function outboundPolicy(): OutboundPolicy {
  return current;
}
