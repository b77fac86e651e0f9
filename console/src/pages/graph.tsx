import type { StepDef } from '../types.js';

// marks every common font has (the emoji a font may lack would show as an empty box)
const DURABLE: Record<string, string> = { sleep: '◷', wait_for_signal: '⚑', wait_for_event: '✉', workflow: '↳' };

/** A condition of a choice branch, short: `steps.checks.fraud.score gt 80`. */
function cond(when: unknown): string {
  if (!when || typeof when !== 'object') return String(when);
  const w = when as Record<string, unknown>;
  for (const [k, word] of [
    ['all', 'and'],
    ['any', 'or'],
  ] as const)
    if (Array.isArray(w[k])) return (w[k] as unknown[]).map(cond).join(` ${word} `);
  if (w.not) return `not (${cond(w.not)})`;
  const op = Object.keys(w).find((k) => k !== 'path');
  return `${typeof w.path === 'string' ? w.path : ''} ${op ?? ''} ${op ? JSON.stringify(w[op]) : ''}`.trim();
}

function Seq({ steps }: { steps: StepDef[] }) {
  return (
    <div class="g-seq">
      {steps.map((s) => (
        <Node key={s.name} step={s} />
      ))}
    </div>
  );
}

function Node({ step }: { step: StepDef }) {
  let body;
  if (step.parallel)
    body = (
      <div class="g-group g-parallel" data-node={step.name}>
        <div class="g-label">
          ⇉ parallel <b>{step.name}</b>
        </div>
        <div class="g-branches">
          {step.parallel.branches.map((b) => (
            <div class="g-branch" key={b.name}>
              <div class="g-branch-name">{b.name}</div>
              <Seq steps={b.steps} />
            </div>
          ))}
        </div>
      </div>
    );
  else if (step.map)
    body = (
      <div class="g-group g-map" data-node={step.name}>
        <div class="g-label">
          ▤ map <b>{step.name}</b>{' '}
          <span class="muted">
            over {typeof step.map.items === 'string' ? step.map.items : `${(step.map.items as unknown[]).length} items`},{' '}
            {step.map.concurrency ?? 10} at a time
          </span>
        </div>
        <div class="g-stack">
          <Seq steps={step.map.steps} />
        </div>
      </div>
    );
  else if (step.choice)
    body = (
      <div class="g-group g-choice" data-node={step.name}>
        <div class="g-label">
          ◇ choice <b>{step.name}</b>
        </div>
        <div class="g-branches">
          {step.choice.branches.map((b) => (
            <div class="g-branch" key={b.name}>
              <div class="g-branch-name" title={cond(b.when)}>
                {b.name} <span class="muted">if {cond(b.when)}</span>
              </div>
              <Seq steps={b.steps} />
            </div>
          ))}
          <div class="g-branch">
            <div class="g-branch-name">otherwise</div>
            {step.choice.default?.length ? <Seq steps={step.choice.default} /> : <div class="g-pass muted">input passes through</div>}
          </div>
        </div>
      </div>
    );
  else
    body = (
      <div class={`g-step ${step.type && DURABLE[step.type] ? 'g-durable' : ''}`} data-node={step.name}>
        <b>
          {step.type && DURABLE[step.type] ? `${DURABLE[step.type]} ` : ''}
          {step.name}
        </b>
        <span class="type">{step.type}</span>
      </div>
    );
  return (
    <div class="g-node">
      {body}
      {step.catch?.length ? (
        <div class="g-catch">
          <div class="g-branch-name">on failure</div>
          <Seq steps={step.catch} />
        </div>
      ) : null}
    </div>
  );
}

/**
 * A workflow definition drawn as nested boxes: steps top to bottom, parallel and choice
 * branches side by side, a map's steps on a stack, catch steps beside what they catch. The
 * definitions are series-parallel by construction, so nesting draws them exactly and needs no
 * general graph layout.
 */
export function Graph({ steps, triggers }: { steps: StepDef[]; triggers?: { event: string }[] }) {
  return (
    <div class="graph">
      <div class="g-seq">
        <div class="g-start">
          {triggers?.length ? `start · POST /execute or event ${triggers.map((t) => t.event).join(', ')}` : 'start'}
        </div>
        {steps.map((s) => (
          <Node key={s.name} step={s} />
        ))}
        <div class="g-start">end</div>
      </div>
    </div>
  );
}
