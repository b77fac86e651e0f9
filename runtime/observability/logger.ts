import pino, { type Logger } from 'pino';
import type { Config } from '../config/index.js';

export type { Logger };

/** JSON logs (pino) to stdout or stderr; `format: pretty` is left to `pino-pretty` in a pipe. */
export function createLogger(c: Config['logging'], bindings: Record<string, unknown> = {}): Logger {
  const dest = pino.destination({ fd: c.output === 'stderr' ? 2 : 1, sync: false });
  return pino({ level: c.level, base: { pid: process.pid, ...bindings } }, dest);
}
