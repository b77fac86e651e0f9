import { describe, expect, it } from 'vitest';
import { errorReply } from '../../dist/runtime/api/body.js';
import { RuntimeError } from '../../dist/runtime/errors/index.js';

describe('errorReply', () => {
  it('answers 503 E_STORE_UNAVAILABLE for a store connection failure, not a 500', () => {
    for (const code of ['ECONNREFUSED', 'CONNECTION_CLOSED', 'CONNECT_TIMEOUT', '57P01', '08006']) {
      const r = errorReply(Object.assign(new Error('boom'), { code }));
      expect(r.status).toBe(503);
      expect(JSON.parse(String(r.body)).error.code).toBe('E_STORE_UNAVAILABLE');
    }
  });

  it('keeps a catalogued error with its own status, and hides the text of an unknown one', () => {
    const known = errorReply(new RuntimeError('E_WORKFLOW_NOT_FOUND', 'no workflow "x"'));
    expect(known.status).toBe(404);
    expect(JSON.parse(String(known.body)).error).toEqual({ code: 'E_WORKFLOW_NOT_FOUND', message: 'no workflow "x"' });
    const bug = errorReply(new TypeError('cannot read properties of undefined'));
    expect(bug.status).toBe(500);
    expect(JSON.parse(String(bug.body)).error.code).toBe('E_INTERNAL');
    expect(JSON.parse(String(bug.body)).error.message).not.toContain('undefined');
  });
});
