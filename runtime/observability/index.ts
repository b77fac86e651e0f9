export { createLogger, type Logger } from './logger.js';
export { childCache, createMetrics, type ChildCache, type Metrics } from './metrics.js';
