import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export interface TrivialServer {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/** Starts dist/bench/trivial-server.js on a free loopback port and waits for it to listen. */
export async function startTrivialServer(root: string): Promise<TrivialServer> {
  const script = join(root, 'dist/bench/trivial-server.js');
  if (!existsSync(script)) throw new Error(`${script} does not exist: run "npm run build" first`);
  const child = spawn(process.execPath, [script, '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the trivial server did not start within 10 s')), 10_000);
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the trivial server exited with code ${code}`));
    });
  });
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    async stop() {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
      process.removeListener('exit', killOnExit);
    },
  };
}
