export { RedisCache } from './redis.js';
export { CANCEL_MEMORY_MS } from './port.js';
export type { Cache, HotRunStatus } from './port.js';
