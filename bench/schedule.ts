import type { Stage } from './options.js';

/**
 * When each request of a stage is due: the open model's schedule.
 *
 * A stage offers requests at a rate that goes linearly from `from` to `to` over its duration
 * (a hold when they are equal). Request i (0-based) is due when the integral of the rate
 * reaches i: N(t) = a·t + (b − a)·t² / 2D, so t_i = 2i / (a + √(a² + 2(b − a)·i / D)).
 * For a hold that is i / rate, evenly spaced; the form has no cancellation for ramps down.
 * The count is N(D) = (a + b)·D / 2, rounded down.
 */
export interface StagePlan {
  /** requests the stage offers */
  count: number;
  /** ms after the stage's start at which request i is due */
  dueMs(i: number): number;
}

export function planOf(stage: Pick<Stage, 'from' | 'to' | 'durationS'>): StagePlan {
  const a = stage.from;
  const b = stage.to;
  const d = stage.durationS;
  const count = Math.floor(((a + b) * d) / 2 + 1e-9);
  const slope = (b - a) / d;
  return {
    count,
    dueMs(i: number): number {
      if (i <= 0) return 0;
      const root = Math.sqrt(Math.max(0, a * a + 2 * slope * i));
      return (2000 * i) / (a + root);
    },
  };
}
