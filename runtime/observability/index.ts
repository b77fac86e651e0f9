export { createLogger, type Logger } from './logger.js';
export { createMetrics, labelled, type Metrics } from './metrics.js';
