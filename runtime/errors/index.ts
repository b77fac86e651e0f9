/**
 * The one catalogue of error codes. Errors cross threads and the wire as plain
 * data `{ code, message, details? }` and are rebuilt with `fromPlain` on the other side.
 */
export const ErrorCodes = {
  // HTTP input
  E_BAD_JSON: { status: 400, retryable: false },
  E_VALIDATION: { status: 400, retryable: false },
  E_BODY_TOO_LARGE: { status: 413, retryable: false },
  E_READ_TIMEOUT: { status: 408, retryable: true },
  E_NOT_FOUND: { status: 404, retryable: false },
  E_METHOD_NOT_ALLOWED: { status: 405, retryable: false },
  E_WORKFLOW_NOT_FOUND: { status: 404, retryable: false },
  E_WORKFLOW_EXISTS: { status: 409, retryable: false },
  E_WORKFLOW_INVALID: { status: 400, retryable: false },
  E_WORKFLOW_INACTIVE: { status: 409, retryable: false },
  E_IDEMPOTENCY_CONFLICT: { status: 409, retryable: false },
  E_RUN_NOT_FOUND: { status: 404, retryable: false },
  E_RUN_FINAL: { status: 409, retryable: false },
  E_RUN_NOT_FAILED: { status: 409, retryable: false },
  E_SCHEDULE_NOT_FOUND: { status: 404, retryable: false },
  E_UNAUTHENTICATED: { status: 401, retryable: false },
  E_FORBIDDEN: { status: 403, retryable: false },
  E_OVERLOADED: { status: 503, retryable: true },
  E_STOPPING: { status: 503, retryable: true },
  E_CANCELLED: { status: 500, retryable: false },
  // dependencies
  E_QUEUE_UNAVAILABLE: { status: 503, retryable: true },
  E_STORE_UNAVAILABLE: { status: 503, retryable: true },
  E_INTERNAL: { status: 500, retryable: false },
  // step execution
  E_STEP_FAILED: { status: 500, retryable: true },
  E_STEP_TIMEOUT: { status: 500, retryable: true },
  E_STEP_UNKNOWN: { status: 500, retryable: false },
  E_STEP_CONFIG: { status: 500, retryable: false },
  E_INPUT_INVALID: { status: 500, retryable: false },
  E_OUTPUT_INVALID: { status: 500, retryable: false },
  E_WORKER_CRASHED: { status: 500, retryable: true },
  E_PROCESS_EXIT: { status: 500, retryable: true },
  E_MAX_DELIVERIES: { status: 500, retryable: false },
  E_STORE_REJECTED: { status: 500, retryable: false },
  E_HTTP_FORBIDDEN_ADDRESS: { status: 500, retryable: false },
  // durable waits (a step's retry and catch apply)
  E_SIGNAL_TIMEOUT: { status: 500, retryable: true },
  E_EVENT_TIMEOUT: { status: 500, retryable: true },
  E_CHILD_TIMEOUT: { status: 500, retryable: true },
  E_CHILD_FAILED: { status: 500, retryable: true },
  E_CONFIG: { status: 500, retryable: false },
  E_SERVICES_UNREACHABLE: { status: 503, retryable: true },
  E_DATA_DIR_IN_USE: { status: 503, retryable: true },
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export interface PlainError {
  code: string;
  message: string;
  details?: unknown;
  /** a function's thrown error: its stack, frames mapped to the .ts sources (kept in the step record) */
  stack?: string;
}

export class RuntimeError extends Error {
  readonly code: ErrorCode;
  readonly details?: unknown;
  constructor(code: ErrorCode, message: string, details?: unknown) {
    super(message);
    this.name = 'RuntimeError';
    this.code = code;
    this.details = details;
  }
  get status(): number {
    return ErrorCodes[this.code].status;
  }
  toPlain(): PlainError {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }
}

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.prototype.hasOwnProperty.call(ErrorCodes, code);
}

/** Turns anything thrown (including non-Errors) into plain error data. */
export function toPlain(err: unknown, fallback: ErrorCode = 'E_INTERNAL'): PlainError {
  if (err instanceof RuntimeError) return err.toPlain();
  if (err && typeof err === 'object') {
    const e = err as { code?: unknown; message?: unknown; details?: unknown };
    const code = isErrorCode(e.code) ? e.code : fallback;
    const message = typeof e.message === 'string' && e.message ? e.message : safeString(err);
    return e.details === undefined ? { code, message } : { code, message, details: e.details };
  }
  return { code: fallback, message: `non-Error thrown: ${safeString(err)}` };
}

export function fromPlain(plain: PlainError): RuntimeError {
  const code = isErrorCode(plain.code) ? plain.code : 'E_INTERNAL';
  return new RuntimeError(code, plain.message, plain.details);
}

function safeString(v: unknown): string {
  try {
    return typeof v === 'string' ? v : (JSON.stringify(v) ?? String(v));
  } catch {
    return String(v);
  }
}
