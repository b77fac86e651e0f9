// The part of autocannon 9's programmatic API that the harness uses (the
// package ships no types, and @types/autocannon is not a dependency).
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events';

  export interface Request {
    method?: string;
    path?: string;
    headers?: Record<string, string>;
    body?: string | Buffer;
    /** called with the whole body of each response, before the instance's 'response' event */
    onResponse?: (status: number, body: string, context: Record<string, unknown>, headers: Record<string, string>) => void;
  }

  export interface Options {
    url: string;
    method?: string;
    headers?: Record<string, string>;
    body?: string | Buffer;
    requests?: Request[];
    connections?: number;
    pipelining?: number;
    /** seconds */
    duration?: number;
    /** seconds */
    timeout?: number;
    overallRate?: number;
    connectionRate?: number;
    maxOverallRequests?: number;
    maxConnectionRequests?: number;
    amount?: number;
    bailout?: number;
    ignoreCoordinatedOmission?: boolean;
    setupClient?: (client: Client) => void;
    renderProgressBar?: boolean;
    renderResultsTable?: boolean;
    renderLatencyTable?: boolean;
    excludeErrorStats?: boolean;
    title?: string;
  }

  export interface Client extends EventEmitter {
    setBody(body: string | Buffer): void;
    setHeaders(headers: Record<string, string>): void;
  }

  export interface Histogram {
    average: number;
    min: number;
    max: number;
    p50: number;
    p90: number;
    p97_5: number;
    p99: number;
  }

  export interface Result {
    title?: string;
    url: string;
    latency: Histogram;
    /** per-second request counts; `sent` is the number of requests written */
    requests: Histogram & { sent: number; total: number };
    duration: number;
    errors: number;
    timeouts: number;
    non2xx: number;
    statusCodeStats: Record<string, { count: number }>;
    start: Date;
    finish: Date;
  }

  export interface Instance extends EventEmitter, PromiseLike<Result> {
    stop(): void;
    on(event: 'response', listener: (client: Client, statusCode: number, resBytes: number, responseTime: number) => void): this;
    on(event: 'reqError', listener: (err: Error) => void): this;
    on(event: 'done', listener: (result: Result) => void): this;
    on(event: 'error', listener: (err: Error) => void): this;
    on(event: string, listener: (...args: any[]) => void): this;
  }

  function autocannon(opts: Options): Instance;
  function autocannon(opts: Options, cb: (err: Error | null, result: Result) => void): Instance;
  export default autocannon;
}
