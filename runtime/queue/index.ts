export { JetStreamQueue } from './jetstream.js';
export { PostgresQueue } from './postgres.js';
export { keepAliveInterval, within } from './port.js';
export type { Queue, Delivery, Unsubscribe, IdempotencyClaim, PublishResult, QueueEntry, StopConsuming } from './port.js';
export { encode, decode, type RunMessage, type RunResult, type CancelMessage, type WorkflowChange } from './codec.js';
