/**
 * Writes a report's markdown again from its raw JSON (after a change to report.ts), without
 * rerunning the load: node dist/bench/rerender.js bench/results/raw/<stamp>.json
 * The .md goes where the harness put it (the JSON's folder's parent).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { renderMarkdown, type BenchResult } from './report.js';

for (const file of process.argv.slice(2)) {
  const result = JSON.parse(readFileSync(file, 'utf8')) as BenchResult;
  const out = join(dirname(file), '..', result.files.md);
  writeFileSync(out, renderMarkdown(result));
  console.log(`wrote ${out}`);
}
