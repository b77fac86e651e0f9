export { Queue, type Delivery } from './nats.js';
export { encode, decode, type RunMessage, type RunResult } from './codec.js';
