export { RedisCache } from './redis.js';
export { MemoryCache } from './memory.js';
export { TtlCache } from './ttl-cache.js';
export type { Cache, HotRunStatus, IdempotencyHolder } from './port.js';
