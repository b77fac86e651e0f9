import { describe, expect, it } from 'vitest';
import { ErrorCodes, fromPlain, isErrorCode, RuntimeError, toPlain } from '../../dist/runtime/errors/index.js';

describe('toPlain: non-Error thrown values', () => {
  it('a string becomes E_INTERNAL with the string in the message', () => {
    expect(toPlain('boom')).toEqual({ code: 'E_INTERNAL', message: 'non-Error thrown: boom' });
  });

  it('a number becomes E_INTERNAL with the number in the message', () => {
    expect(toPlain(42)).toEqual({ code: 'E_INTERNAL', message: 'non-Error thrown: 42' });
    expect(toPlain(0)).toEqual({ code: 'E_INTERNAL', message: 'non-Error thrown: 0' });
  });

  it('undefined and null become E_INTERNAL with a non-empty message', () => {
    expect(toPlain(undefined)).toEqual({ code: 'E_INTERNAL', message: 'non-Error thrown: undefined' });
    expect(toPlain(null)).toEqual({ code: 'E_INTERNAL', message: 'non-Error thrown: null' });
  });

  it('booleans, bigints and symbols get a readable message', () => {
    expect(toPlain(false)).toEqual({ code: 'E_INTERNAL', message: 'non-Error thrown: false' });
    expect(toPlain(10n)).toEqual({ code: 'E_INTERNAL', message: 'non-Error thrown: 10' });
    expect(toPlain(Symbol('sym'))).toEqual({ code: 'E_INTERNAL', message: 'non-Error thrown: Symbol(sym)' });
  });

  it('a plain object without message is serialised into the message', () => {
    expect(toPlain({ foo: 1 })).toEqual({ code: 'E_INTERNAL', message: '{"foo":1}' });
    expect(toPlain({ message: 42 })).toEqual({ code: 'E_INTERNAL', message: '{"message":42}' });
    expect(toPlain({ message: '', x: 1 })).toEqual({ code: 'E_INTERNAL', message: '{"message":"","x":1}' });
  });

  it('a circular object does not make toPlain throw', () => {
    const o: Record<string, unknown> = { a: 1 };
    o.self = o;
    const p = toPlain(o);
    expect(p.code).toBe('E_INTERNAL');
    expect(p.message).toBe('[object Object]');
  });

  it('an object carrying a known code, message and details keeps them', () => {
    expect(toPlain({ code: 'E_STEP_TIMEOUT', message: 'too slow', details: { ms: 5 } })).toEqual({
      code: 'E_STEP_TIMEOUT',
      message: 'too slow',
      details: { ms: 5 },
    });
  });

  it('an unknown or non-string code falls back', () => {
    expect(toPlain({ code: 'E_NOT_A_CODE', message: 'x' })).toEqual({ code: 'E_INTERNAL', message: 'x' });
    expect(toPlain({ code: 404, message: 'x' })).toEqual({ code: 'E_INTERNAL', message: 'x' });
    expect(toPlain({ code: 'toString', message: 'x' }).code).toBe('E_INTERNAL'); // not an own property of the catalogue
  });

  it('uses the given fallback code', () => {
    expect(toPlain('nope', 'E_STEP_FAILED')).toEqual({ code: 'E_STEP_FAILED', message: 'non-Error thrown: nope' });
    expect(toPlain(new Error('bad'), 'E_STEP_FAILED')).toEqual({ code: 'E_STEP_FAILED', message: 'bad' });
  });

  it('every result is plain, JSON-safe data with a non-empty message', () => {
    const values: unknown[] = ['s', 1, undefined, null, {}, [], new Error(''), new TypeError('t'), () => 1, { code: 'E_VALIDATION' }];
    for (const v of values) {
      const p = toPlain(v);
      expect(isErrorCode(p.code)).toBe(true);
      expect(typeof p.message).toBe('string');
      expect(p.message.length).toBeGreaterThan(0);
      expect(JSON.parse(JSON.stringify(p))).toEqual(p);
    }
  });
});

describe('toPlain: Errors', () => {
  it('a plain Error keeps its message, code E_INTERNAL', () => {
    expect(toPlain(new Error('disk on fire'))).toEqual({ code: 'E_INTERNAL', message: 'disk on fire' });
  });

  it('an Error with a catalogue code keeps the code', () => {
    const e = Object.assign(new Error('too big'), { code: 'E_BODY_TOO_LARGE' });
    expect(toPlain(e)).toEqual({ code: 'E_BODY_TOO_LARGE', message: 'too big' });
  });

  it('a Node system error code (ECONNREFUSED) is not a catalogue code', () => {
    const e = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    expect(toPlain(e)).toEqual({ code: 'E_INTERNAL', message: 'connect ECONNREFUSED' });
  });

  it('a RuntimeError gives its code, message and details (details only when present)', () => {
    expect(toPlain(new RuntimeError('E_VALIDATION', 'bad field'))).toEqual({ code: 'E_VALIDATION', message: 'bad field' });
    expect('details' in toPlain(new RuntimeError('E_VALIDATION', 'bad field'))).toBe(false);
    expect(toPlain(new RuntimeError('E_WORKFLOW_INVALID', 'dup', { problems: [1] }))).toEqual({
      code: 'E_WORKFLOW_INVALID',
      message: 'dup',
      details: { problems: [1] },
    });
  });
});

describe('RuntimeError and fromPlain', () => {
  it('RuntimeError is an Error with a name, a code and the catalogue status', () => {
    const e = new RuntimeError('E_WORKFLOW_EXISTS', 'exists');
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('RuntimeError');
    expect(e.code).toBe('E_WORKFLOW_EXISTS');
    expect(e.status).toBe(409);
    expect(e.message).toBe('exists');
    expect(new RuntimeError('E_RUN_NOT_FOUND', 'x').status).toBe(404);
    expect(new RuntimeError('E_BODY_TOO_LARGE', 'x').status).toBe(413);
  });

  it('fromPlain rebuilds a RuntimeError; toPlain(fromPlain(p)) round-trips', () => {
    const p = { code: 'E_STEP_TIMEOUT', message: 'step "a" timed out', details: { after_ms: 100 } };
    const e = fromPlain(p);
    expect(e).toBeInstanceOf(RuntimeError);
    expect(e.code).toBe('E_STEP_TIMEOUT');
    expect(e.message).toBe('step "a" timed out');
    expect(e.details).toEqual({ after_ms: 100 });
    expect(toPlain(e)).toEqual(p);
    expect(toPlain(fromPlain(JSON.parse(JSON.stringify(toPlain('x')))))).toEqual({ code: 'E_INTERNAL', message: 'non-Error thrown: x' });
  });

  it('fromPlain maps an unknown code to E_INTERNAL and keeps the message', () => {
    const e = fromPlain({ code: 'E_FROM_THE_FUTURE', message: 'hm' });
    expect(e.code).toBe('E_INTERNAL');
    expect(e.message).toBe('hm');
    expect(e.status).toBe(500);
  });

  it('every catalogue code has an HTTP status and a retryable flag', () => {
    for (const [code, v] of Object.entries(ErrorCodes)) {
      expect(code).toMatch(/^E_[A-Z_]+$/);
      expect(v.status).toBeGreaterThanOrEqual(400);
      expect(v.status).toBeLessThan(600);
      expect(typeof v.retryable).toBe('boolean');
    }
    expect(isErrorCode('E_VALIDATION')).toBe(true);
    expect(isErrorCode('E_NOPE')).toBe(false);
    expect(isErrorCode(undefined)).toBe(false);
  });
});
