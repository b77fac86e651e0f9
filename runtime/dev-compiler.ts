import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Logger } from './observability/index.js';

export interface CompilerWatch {
  /** resolves after tsc's first compilation */
  ready: Promise<void>;
  stop(): void;
}

/**
 * Dev mode (`npm run dev`): `tsc --watch` over the project as a child
 * process, so a saved function is compiled into dist/, where the executor's
 * watcher picks it up. Incremental, so the first pass writes nothing when
 * `npm run dev` has just built; the system starts after it, so it never reads
 * a file tsc is writing. tsc's own output goes to stderr, prefixed `[tsc]`.
 */
export function startCompilerWatch(root: string, log: Logger): CompilerWatch {
  const tsc = join(root, 'node_modules/typescript/bin/tsc');
  // --noEmitOnError: a file with a type error is not written, so the executor never loads it and
  // runs keep the previous code until the error is fixed (tsc would otherwise emit it anyway)
  const child = spawn(
    process.execPath,
    [tsc, '-p', join(root, 'tsconfig.json'), '--watch', '--incremental', '--noEmitOnError', '--preserveWatchOutput'],
    {
      cwd: root,
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let stopping = false;
  const ready = new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (!line.trim()) return;
      process.stderr.write(`[tsc] ${line}\n`);
      const found = /Found (\d+) errors?/.exec(line);
      if (found && Number(found[1]) > 0) {
        log.warn(
          { errors: Number(found[1]) },
          'TypeScript errors (above): nothing was compiled; the functions keep their previous code until you fix them',
        );
      }
      if (/Watching for file changes/.test(line)) resolve();
    });
    child.once('exit', (code, signal) => reject(new Error(`tsc --watch exited (${code ?? signal}) before its first compilation`)));
  });
  ready.catch(() => {});
  child.once('exit', (code, signal) => {
    if (!stopping) log.error({ code, signal }, 'tsc --watch stopped: saved functions are no longer compiled');
  });
  // never leave a compiler running behind us
  const kill = () => child.kill();
  process.once('exit', kill);
  log.info({ tsc_pid: child.pid }, 'dev mode: tsc --watch started');
  return {
    ready,
    stop() {
      stopping = true;
      process.off('exit', kill);
      child.kill();
    },
  };
}
