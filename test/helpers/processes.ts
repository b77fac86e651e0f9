import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { ROOT } from './env.js';

export interface RuntimeProcess {
  child: ChildProcess;
  /** the HTTP port it logged ("http front door listening" / "ops endpoints listening") */
  port: Promise<number>;
  exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts `node dist/runtime/main.js --role <role>` with --set overrides (and other `flags`); resolves its port from its log. */
export function startRuntimeProcess(role: string, set: string[], env: Record<string, string> = {}, flags: string[] = []): RuntimeProcess {
  const args = ['dist/runtime/main.js', '--role', role, ...flags, ...set.flatMap((s) => ['--set', s]), '--set', 'logging.level=info'];
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const port = new Promise<number>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout });
    rl.on('line', (line) => {
      try {
        const entry = JSON.parse(line) as { msg?: string; port?: number; level?: number };
        if (entry.port !== undefined && /listening/.test(entry.msg ?? '')) resolve(entry.port);
        if ((entry.level ?? 0) >= 50) process.stderr.write(`[${role} ${child.pid}] ${line}\n`);
      } catch {
        process.stderr.write(`[${role} ${child.pid}] ${line}\n`);
      }
    });
    child.stderr.on('data', (d) => process.stderr.write(`[${role} ${child.pid} stderr] ${d}`));
    void exited.then((code) => reject(new Error(`${role} process exited with ${code} before listening`)));
  });
  port.catch(() => {});
  return {
    child,
    port,
    exited,
    async kill(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      await exited;
    },
  };
}
