#!/usr/bin/env node
// `npx wf ...`: the CLI (runtime/cli/wf.ts), built on first use if the build is not there yet.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = new URL('../dist/runtime/cli/wf.js', import.meta.url);
if (!existsSync(cli)) {
  const built = spawnSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  if (built.status !== 0) process.exit(built.status ?? 1);
}
await import(cli.href);
