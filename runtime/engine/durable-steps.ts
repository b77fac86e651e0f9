import { Type, type TSchema } from '@sinclair/typebox';
import { durationMs } from './definition.js';

/**
 * The step types that wait durably: the executor records what they wait for and puts the run
 * to sleep (store/waits.ts) instead of holding a slot, a thread and a queue message. They are
 * part of the runtime, not functions: no module in `functions/` can take these names.
 */
export const DURABLE_STEP_TYPES: ReadonlyMap<string, { config: TSchema; description: string }> = new Map([
  [
    'sleep',
    {
      description: 'waits durably for `duration` ("2s", "1h", ms) or `until` an ISO time; outputs its input',
      config: Type.Object(
        {
          duration: Type.Optional(Type.Union([Type.String({ minLength: 1 }), Type.Number({ minimum: 0 })])),
          until: Type.Optional(Type.String({ minLength: 1 })),
        },
        { additionalProperties: false },
      ),
    },
  ],
  [
    'wait_for_signal',
    {
      description: 'waits for POST /api/v1/executions/:run_id/signals/:signal; outputs the signal body',
      config: Type.Object(
        {
          signal: Type.String({ minLength: 1, maxLength: 255 }),
          timeout: Type.Optional(Type.Union([Type.String(), Type.Number({ minimum: 0 })])),
        },
        { additionalProperties: false },
      ),
    },
  ],
  [
    'wait_for_event',
    {
      description: 'waits for the first event `event` (POST /api/v1/events) whose data contains `match`; outputs the event data',
      config: Type.Object(
        {
          event: Type.String({ minLength: 1, maxLength: 255 }),
          match: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
          timeout: Type.Optional(Type.Union([Type.String(), Type.Number({ minimum: 0 })])),
        },
        { additionalProperties: false },
      ),
    },
  ],
  [
    'workflow',
    {
      description: 'starts a child run of `workflow_id` (name or id) with `input`, waits for it, outputs its output',
      config: Type.Object(
        {
          workflow_id: Type.String({ minLength: 1 }),
          version: Type.Optional(Type.String({ minLength: 1 })),
          input: Type.Optional(Type.Unknown()),
          timeout: Type.Optional(Type.Union([Type.String(), Type.Number({ minimum: 0 })])),
        },
        { additionalProperties: false },
      ),
    },
  ],
]);

export const isDurableStep = (type: string): boolean => DURABLE_STEP_TYPES.has(type);

/** A config the step cannot use, said so that a person can fix it. */
export class DurableConfigError extends Error {}

/** When a sleep ends, from its (rendered) config; `now` in ms. */
export function sleepEnd(config: Record<string, unknown>, now: number): Date {
  const { duration, until } = config;
  if ((duration === undefined) === (until === undefined))
    throw new DurableConfigError('a sleep takes exactly one of "duration" and "until"');
  if (until !== undefined) {
    const t = typeof until === 'string' ? Date.parse(until) : NaN;
    if (!Number.isFinite(t) || Math.abs(t) > 8.64e15)
      throw new DurableConfigError(`"until" must be an ISO 8601 time such as 2026-12-24T09:00:00Z, got ${JSON.stringify(until)}`);
    return new Date(t);
  }
  return new Date(now + durationOf(duration, 'duration'));
}

/** A step's timeout (null: it waits for ever). */
export function timeoutEnd(config: Record<string, unknown>, now: number): Date | null {
  return config.timeout === undefined ? null : new Date(now + durationOf(config.timeout, 'timeout'));
}

function durationOf(v: unknown, field: string): number {
  let ms: number;
  try {
    ms = durationMs(v as string | number, NaN);
  } catch {
    ms = NaN;
  }
  // at most 100 years: a later date cannot be written down
  if (!Number.isFinite(ms) || ms < 0 || ms > 100 * 365 * 86_400_000)
    throw new DurableConfigError(`"${field}" must be a duration such as "30s", "5m", "2h", "1d" or milliseconds, got ${JSON.stringify(v)}`);
  return ms;
}
