import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCatalogue } from '../../dist/runtime/executor/index.js';
import { ROOT } from '../helpers/env.js';

const SDK = pathToFileURL(join(ROOT, 'dist/runtime/sdk/index.js')).href;
const module = (name: string) =>
  `import { defineFunction } from '${SDK}';\nexport default defineFunction({ name: '${name}', handler: () => ({}) });\n`;

describe('loadCatalogue', () => {
  const root = mkdtempSync(join(tmpdir(), 'wf-catalogue-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('loads compiled functions whose TypeScript source exists, and skips stale output of deleted sources', async () => {
    mkdirSync(join(root, 'functions'));
    mkdirSync(join(root, 'dist/functions'), { recursive: true });
    writeFileSync(join(root, 'functions/kept.ts'), '// source');
    writeFileSync(join(root, 'dist/functions/kept.js'), module('kept'));
    writeFileSync(join(root, 'dist/functions/deleted.js'), 'throw new Error("stale output must not be imported")');
    const c = await loadCatalogue(root, ['functions']);
    expect([...c.keys()]).toEqual(['kept']);
  });

  it('loads every module of a directory of plain JavaScript (no compiled copy)', async () => {
    mkdirSync(join(root, 'plain'));
    writeFileSync(join(root, 'plain/a.js'), module('a'));
    writeFileSync(join(root, 'plain/b.mjs'), module('b'));
    const c = await loadCatalogue(root, [join(root, 'plain')]);
    expect([...c.keys()].sort()).toEqual(['a', 'b']);
  });
});
