import { describe, expect, it } from 'vitest';
import { Type } from '@sinclair/typebox';
import { durationMs, validateDefinition } from '../../dist/runtime/engine/index.js';

const SEED = { steps: [{ name: 'echo-step', type: 'echo', config: { message: 'Hello POC' } }] };
const KNOWN = new Set(['echo', 'http']);

describe('validateDefinition', () => {
  it('accepts the seed definition, with and without a known-types check', () => {
    expect(validateDefinition(SEED, KNOWN)).toEqual([]);
    expect(validateDefinition(SEED, null)).toEqual([]);
  });

  it('accepts every optional field in its valid form', () => {
    const def = {
      steps: [
        {
          name: 'a',
          type: 'echo',
          timeout: '1.5s',
          retry: { max_retries: 2, retry_delay: '100ms', max_delay: 5000, backoff_coefficient: 1.5 },
        },
        { name: 'B_2 :x.y-z', type: 'http', config: {}, timeout: 250 },
      ],
    };
    expect(validateDefinition(def, KNOWN)).toEqual([]);
  });

  it('rejects empty steps at /definition/steps', () => {
    const p = validateDefinition({ steps: [] }, KNOWN);
    expect(p).toHaveLength(1);
    expect(p[0].path).toBe('/definition/steps');
    expect(p[0].message).toMatch(/greater or equal to 1/);
  });

  it('rejects a missing steps array and non-object definitions', () => {
    expect(validateDefinition({}, KNOWN).map((x) => x.path)).toContain('/definition/steps');
    for (const bad of [null, undefined, 'steps', 42, [SEED.steps[0]]]) {
      const p = validateDefinition(bad, KNOWN);
      expect(p.length, JSON.stringify(bad)).toBeGreaterThan(0);
      expect(p[0].path).toBe('/definition');
    }
  });

  it('rejects a step without a name', () => {
    const p = validateDefinition({ steps: [{ type: 'echo' }] }, KNOWN);
    expect(p.length).toBeGreaterThan(0);
    expect(p.every((x) => x.path === '/definition/steps/0/name')).toBe(true);
    expect(p[0].message).toBe('Expected required property');
  });

  it('rejects a step without a type (at the right index)', () => {
    const p = validateDefinition({ steps: [{ name: 'ok', type: 'echo' }, { name: 'b' }] }, KNOWN);
    expect(p.length).toBeGreaterThan(0);
    expect(p.every((x) => x.path === '/definition/steps/1/type')).toBe(true);
  });

  it('rejects empty names and types, and names that do not match the pattern', () => {
    expect(validateDefinition({ steps: [{ name: '', type: 'echo' }] }, KNOWN)[0].path).toBe('/definition/steps/0/name');
    expect(validateDefinition({ steps: [{ name: 'a', type: '' }] }, null)[0].path).toBe('/definition/steps/0/type');
    expect(validateDefinition({ steps: [{ name: '-leading-dash', type: 'echo' }] }, KNOWN)[0].path).toBe('/definition/steps/0/name');
    expect(validateDefinition({ steps: [{ name: 'a/b', type: 'echo' }] }, KNOWN)[0].path).toBe('/definition/steps/0/name');
  });

  it('rejects unknown properties on a step, on the definition and in retry', () => {
    expect(validateDefinition({ steps: [{ name: 'a', type: 'echo', foo: 1 }] }, KNOWN)).toEqual([
      { path: '/definition/steps/0/foo', message: 'Unexpected property' },
    ]);
    expect(validateDefinition({ ...SEED, extra: true }, KNOWN)).toEqual([{ path: '/definition/extra', message: 'Unexpected property' }]);
    expect(validateDefinition({ steps: [{ name: 'a', type: 'echo', retry: { attempts: 3 } }] }, KNOWN)[0].path).toBe(
      '/definition/steps/0/retry/attempts',
    );
  });

  it('rejects wrong types of optional fields', () => {
    expect(validateDefinition({ steps: [{ name: 'a', type: 'echo', config: 'x' }] }, KNOWN)[0].path).toBe('/definition/steps/0/config');
    expect(validateDefinition({ steps: [{ name: 'a', type: 'echo', timeout: 'soon' }] }, KNOWN)[0].path).toBe(
      '/definition/steps/0/timeout',
    );
    expect(validateDefinition({ steps: [{ name: 'a', type: 'echo', timeout: -1 }] }, KNOWN)[0].path).toBe('/definition/steps/0/timeout');
    expect(validateDefinition({ steps: [{ name: 'a', type: 'echo', retry: { max_retries: -1 } }] }, KNOWN)[0].path).toBe(
      '/definition/steps/0/retry/max_retries',
    );
    expect(validateDefinition({ steps: [{ name: 'a', type: 'echo', retry: { backoff_coefficient: 0.5 } }] }, KNOWN)[0].path).toBe(
      '/definition/steps/0/retry/backoff_coefficient',
    );
  });

  it('rejects duplicate step names at the second occurrence', () => {
    const p = validateDefinition(
      {
        steps: [
          { name: 'same', type: 'echo' },
          { name: 'same', type: 'echo' },
        ],
      },
      KNOWN,
    );
    expect(p).toHaveLength(1);
    expect(p[0].path).toBe('/definition/steps/1/name');
    expect(p[0].message).toContain('duplicate step name "same"');
    expect(p[0].message).toContain('also at /definition/steps/0');
  });

  it('reports each later duplicate, by its own index', () => {
    const p = validateDefinition(
      {
        steps: [
          { name: 'x', type: 'echo' },
          { name: 'y', type: 'echo' },
          { name: 'x', type: 'echo' },
          { name: 'x', type: 'echo' },
        ],
      },
      KNOWN,
    );
    expect(p.map((x) => x.path)).toEqual(['/definition/steps/2/name', '/definition/steps/3/name']);
  });

  it('rejects an unknown step type when knownTypes is given, naming the known types', () => {
    const p = validateDefinition(
      {
        steps: [
          { name: 'a', type: 'echo' },
          { name: 'b', type: 'nope' },
        ],
      },
      KNOWN,
    );
    expect(p).toHaveLength(1);
    expect(p[0].path).toBe('/definition/steps/1/type');
    expect(p[0].message).toContain('unknown step type "nope"');
    expect(p[0].message).toContain('echo, http');
  });

  it('skips the type check when knownTypes is null (but still checks names)', () => {
    expect(validateDefinition({ steps: [{ name: 'a', type: 'anything-goes' }] }, null)).toEqual([]);
    const dup = validateDefinition(
      {
        steps: [
          { name: 'a', type: 'x' },
          { name: 'a', type: 'y' },
        ],
      },
      null,
    );
    expect(dup.map((x) => x.path)).toEqual(['/definition/steps/1/name']);
  });

  it('uses the given base path', () => {
    expect(validateDefinition({ steps: [] }, null, '/body/def')[0].path).toBe('/body/def/steps');
  });

  it('returns at most 10 shape problems', () => {
    const steps = Array.from({ length: 30 }, () => ({ name: 5, type: 6 }));
    expect(validateDefinition({ steps }, KNOWN)).toHaveLength(10);
  });
});

describe('validateDefinition: control flow', () => {
  const leaf = (name: string, extra: Record<string, unknown> = {}) => ({ name, type: 'echo', ...extra });
  const ok = (def: unknown) => expect(validateDefinition(def, KNOWN)).toEqual([]);
  const paths = (def: unknown) => validateDefinition(def, KNOWN).map((p) => p.path);
  const first = (def: unknown) => validateDefinition(def, KNOWN)[0];

  it('accepts parallel, map and choice, nested, with references to what has completed', () => {
    ok({
      steps: [
        leaf('load'),
        {
          name: 'fan',
          parallel: {
            branches: [
              { name: 'a', steps: [leaf('a1', { config: { x: '{{ steps.load.id }}' } }), leaf('a2', { config: { y: '{{ steps.a1 }}' } })] },
              {
                name: 'b',
                steps: [
                  {
                    name: 'each',
                    map: {
                      items: '{{ steps.load.items }}',
                      concurrency: 4,
                      steps: [leaf('one', { config: { sku: '{{ item.sku }}', i: '{{ index }}' } })],
                    },
                  },
                ],
              },
            ],
          },
        },
        {
          name: 'route',
          choice: {
            branches: [
              {
                name: 'big',
                when: { all: [{ path: 'steps.fan.a.total', gte: 10 }, { not: { path: 'run.input.test', equals: true } }] },
                steps: [leaf('review')],
              },
            ],
            default: [],
          },
        },
        leaf('end', { config: { all: '{{ steps.fan.b }}', route: '{{ steps.route }}' } }),
      ],
    });
  });

  it('a step is exactly one of type, parallel, map or choice', () => {
    expect(first({ steps: [{ name: 'x' }] }).path).toBe('/definition/steps/0/type');
    const both = first({ steps: [{ name: 'x', type: 'echo', map: { items: [], steps: [leaf('y')] } }] });
    expect(both.path).toBe('/definition/steps/0/map');
    expect(both.message).toContain('type and map');
  });

  it('config, timeout and retry belong on the steps inside a control-flow node', () => {
    expect(paths({ steps: [{ name: 'p', timeout: '1s', parallel: { branches: [{ name: 'a', steps: [leaf('x')] }] } }] })).toEqual([
      '/definition/steps/0/timeout',
    ]);
  });

  it('names are unique across the definition, nested ones included; branch names within their node', () => {
    const p = validateDefinition(
      {
        steps: [
          leaf('x'),
          {
            name: 'p',
            parallel: {
              branches: [
                { name: 'a', steps: [leaf('x')] },
                { name: 'a', steps: [leaf('z')] },
              ],
            },
          },
        ],
      },
      KNOWN,
    );
    expect(p.map((x) => x.path).sort()).toEqual([
      '/definition/steps/1/parallel/branches/0/steps/0/name',
      '/definition/steps/1/parallel/branches/1/name',
    ]);
    expect(p.find((x) => x.path.endsWith('steps/0/name'))!.message).toContain('also at /definition/steps/0');
  });

  it('checks step types inside nested nodes, with the full path', () => {
    expect(
      paths({
        steps: [
          {
            name: 'm',
            map: {
              items: [1],
              steps: [
                {
                  name: 'c',
                  choice: { branches: [{ name: 'b', when: { path: 'item', equals: 1 }, steps: [{ name: 'q', type: 'nope' }] }] },
                },
              ],
            },
          },
        ],
      }),
    ).toEqual(['/definition/steps/0/map/steps/0/choice/branches/0/steps/0/type']);
  });

  it('refuses references to a sibling branch, to steps inside another node, and to later steps', () => {
    const sibling = first({
      steps: [
        {
          name: 'p',
          parallel: {
            branches: [
              { name: 'a', steps: [leaf('a1')] },
              { name: 'b', steps: [leaf('b1', { config: { v: '{{ steps.a1 }}' } })] },
            ],
          },
        },
      ],
    });
    expect(sibling.path).toBe('/definition/steps/0/parallel/branches/1/steps/0/config');
    expect(sibling.message).toContain('inside another parallel, map or choice');
    const outside = first({
      steps: [{ name: 'm', map: { items: [1], steps: [leaf('one')] } }, leaf('after', { config: { v: '{{ steps.one }}' } })],
    });
    expect(outside.path).toBe('/definition/steps/1/config');
    const later = first({
      steps: [{ name: 'p', parallel: { branches: [{ name: 'a', steps: [leaf('a1', { config: { v: '{{ steps.z }}' } })] }] } }, leaf('z')],
    });
    expect(later.message).toContain('comes later');
    const self = first({ steps: [{ name: 'm', map: { items: '{{ steps.m }}', steps: [leaf('one')] } }] });
    expect(self.path).toBe('/definition/steps/0/map/items');
  });

  it('item and index exist only inside a map', () => {
    const p = first({ steps: [leaf('a', { config: { v: '{{ item.sku }}' } })] });
    expect(p.path).toBe('/definition/steps/0/config');
    expect(p.message).toContain('only inside a map');
    expect(paths({ steps: [{ name: 'm', map: { items: '{{ item }}', steps: [leaf('one')] } }] })).toEqual([
      '/definition/steps/0/map/items',
    ]);
  });

  it('map items is one template or an array; concurrency 1..100', () => {
    expect(paths({ steps: [{ name: 'm', map: { items: 'x {{ input.list }}', steps: [leaf('one')] } }] })).toEqual([
      '/definition/steps/0/map/items',
    ]);
    expect(paths({ steps: [{ name: 'm', map: { items: {}, steps: [leaf('one')] } }] })[0]).toBe('/definition/steps/0/map/items');
    expect(paths({ steps: [{ name: 'm', map: { items: [], concurrency: 0, steps: [leaf('one')] } }] })).toEqual([
      '/definition/steps/0/map/concurrency',
    ]);
  });

  it('a condition is a path with exactly one test, or one combinator', () => {
    const at = '/definition/steps/0/choice/branches/0/when';
    const c = (when: unknown) => paths({ steps: [{ name: 'c', choice: { branches: [{ name: 'b', when, steps: [] }] } }] });
    expect(c({ path: 'input.x' })).toEqual([at]);
    expect(c({ path: 'input.x', gt: 1, lt: 5 })).toEqual([at]);
    expect(c({ equals: 1 })).toEqual([at]);
    expect(c({ all: [{ path: 'input.x', gt: 1 }], path: 'input.y', equals: 1 })).toEqual([at]);
    expect(c({ any: [{ path: 'input.x' }] })).toEqual([`${at}/any/0`]);
    expect(c({ path: 'steps.nope', exists: true })).toEqual([`${at}/path`]);
    expect(c({ path: 'input.x', between: 1 })).toEqual([`${at}/between`]);
  });

  it("checks the references of a step's input template like its config", () => {
    ok({ steps: [leaf('a'), leaf('b', { input: { x: '{{ steps.a }}' } })] });
    expect(first({ steps: [leaf('a', { input: '{{ steps.b }}' }), leaf('b')] })).toMatchObject({ path: '/definition/steps/0/input' });
    expect(paths({ steps: [{ name: 'm', input: '{{ item }}', map: { items: [], steps: [leaf('one')] } }] })).toEqual([
      '/definition/steps/0/input',
    ]);
  });

  it('limits nesting depth and the recorded name length', () => {
    let node: any = leaf('deep');
    for (let i = 0; i < 5; i++) node = { name: `p${i}`, parallel: { branches: [{ name: 'b', steps: [node] }] } };
    const p = validateDefinition({ steps: [node] }, KNOWN);
    expect(p).toHaveLength(1);
    expect(p[0].message).toContain('nest at most 4 deep');
    const long = 'n'.repeat(200);
    expect(first({ steps: [{ name: long, map: { items: [], steps: [leaf(long.replace(/^n/, 'm'))] } }] }).message).toContain(
      'longer than 255',
    );
  });

  it('refuses what would always fail at run time: padded map items, condition paths with filters or spaces', () => {
    expect(paths({ steps: [{ name: 'm', map: { items: ' {{ input.list }} ', steps: [leaf('one')] } }] })).toEqual([
      '/definition/steps/0/map/items',
    ]);
    const c = (path: string) =>
      paths({ steps: [{ name: 'c', choice: { branches: [{ name: 'b', when: { path, exists: true }, steps: [] }] } }] });
    expect(c('input.v | default: 0')).toEqual(['/definition/steps/0/choice/branches/0/when/path']);
    expect(c('input.v ')).toEqual(['/definition/steps/0/choice/branches/0/when/path']);
    expect(c('input.v')).toEqual([]);
  });

  it('accepts several indexes on a root (input[0][1], item[2][0])', () => {
    ok({
      steps: [
        leaf('a', { config: { v: '{{ input[0][1] }}' } }),
        { name: 'm', map: { items: [[1]], steps: [leaf('b', { config: { v: '{{ item[0][0] }}' } })] } },
      ],
    });
  });

  it('answers a definition nested thousands of levels deep with a problem, not a crash', () => {
    let when: any = { path: 'input', exists: true };
    for (let i = 0; i < 5000; i++) when = { not: when };
    const p = validateDefinition({ steps: [{ name: 'c', choice: { branches: [{ name: 'b', when, steps: [] }] } }] }, KNOWN);
    expect(p).toEqual([{ path: '/definition', message: expect.stringContaining('nests too deeply') }]);
  });

  it('a choice branch may not be named "default" when there is a default list', () => {
    expect(
      paths({
        steps: [{ name: 'c', choice: { branches: [{ name: 'default', when: { path: 'input', exists: true }, steps: [] }], default: [] } }],
      }),
    ).toEqual(['/definition/steps/0/choice/default']);
  });
});

describe("validateDefinition: a function's config schema", () => {
  const known = new Map([
    [
      'price',
      {
        config: Type.Object(
          { vat_pct: Type.Number({ maximum: 100 }), note: Type.Optional(Type.String()) },
          { additionalProperties: false },
        ),
      },
    ],
    ['echo', {}],
  ]);

  it('checks a config without templates at registration, with the path into the config', () => {
    expect(validateDefinition({ steps: [{ name: 'p', type: 'price', config: { vat_pct: 20 } }] }, known)).toEqual([]);
    const over = validateDefinition({ steps: [{ name: 'p', type: 'price', config: { vat_pct: 150 } }] }, known);
    expect(over).toHaveLength(1);
    expect(over[0].path).toBe('/definition/steps/0/config/vat_pct');
    expect(over[0].message).toContain('the config schema of "price"');
    expect(validateDefinition({ steps: [{ name: 'p', type: 'price' }] }, known)[0].path).toBe('/definition/steps/0/config/vat_pct');
    expect(validateDefinition({ steps: [{ name: 'p', type: 'price', config: { vat_pct: 1, extra: 1 } }] }, known)[0].path).toBe(
      '/definition/steps/0/config/extra',
    );
  });

  it('leaves a config with templates to the executor (checked after rendering), and steps without a schema alone', () => {
    expect(validateDefinition({ steps: [{ name: 'p', type: 'price', config: { vat_pct: '{{ run.input.vat }}' } }] }, known)).toEqual([]);
    expect(validateDefinition({ steps: [{ name: 'e', type: 'echo', config: { anything: [1] } }] }, known)).toEqual([]);
  });

  it('lists known type names (not entries) when the map has no such type', () => {
    expect(validateDefinition({ steps: [{ name: 'x', type: 'nope' }] }, known)[0].message).toContain('known types: echo, price');
  });
});

describe('durationMs', () => {
  it('returns the fallback for undefined, numbers as they are, and converts strings', () => {
    expect(durationMs(undefined, 123)).toBe(123);
    expect(durationMs(0, 123)).toBe(0);
    expect(durationMs(2500, 123)).toBe(2500);
    expect(durationMs('100ms', 0)).toBe(100);
    expect(durationMs('30s', 0)).toBe(30_000);
    expect(durationMs('5m', 0)).toBe(300_000);
    expect(durationMs('2h', 0)).toBe(7_200_000);
    expect(durationMs('1.5s', 0)).toBe(1500);
    expect(durationMs('1.5 s', 0)).toBe(1500);
  });

  it('falls back on strings it cannot read', () => {
    expect(durationMs('soon', 777)).toBe(777);
    expect(durationMs('5 parsecs', 777)).toBe(777);
  });
});
