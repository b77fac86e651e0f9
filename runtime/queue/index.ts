export { Queue, type Delivery } from './nats.js';
export { encode, decode, type RunMessage, type RunResult, type CancelMessage } from './codec.js';
