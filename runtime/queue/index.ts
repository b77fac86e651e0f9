export { JetStreamQueue } from './jetstream.js';
export type { Queue, Delivery, Unsubscribe } from './port.js';
export { encode, decode, type RunMessage, type RunResult, type CancelMessage, type WorkflowChange } from './codec.js';
