import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../observability/index.js';
import { compiledDir, loadCatalogue, type CatalogueEntry } from './catalogue.js';

export interface HotReloadOptions {
  root: string;
  dirs: readonly string[];
  /** quiet time after the last change before reloading (a compile writes several files) */
  debounceMs: number;
  log: Logger;
  /** called with each catalogue that loaded; `version` is also what worker threads must import */
  swap(catalogue: Map<string, CatalogueEntry>, version: number): void;
}

const MODULE = /\.m?js$/;

/**
 * Dev mode: watches the compiled function directories and, when their code
 * changed, imports every module again under a new version (a new URL, since
 * ESM caches by URL) and hands the catalogue to `swap`. A module that fails
 * to load is logged and the previous functions stay. Returns a stop function.
 *
 * Only the function modules themselves get a new URL on the host's main
 * thread; worker threads of a new generation import everything afresh. ESM
 * cannot unload modules, so each reload keeps the old ones in memory: fine
 * for a dev session, and the reason this is not for production.
 */
export function watchFunctionDirs(o: HotReloadOptions): () => void {
  const dirs = o.dirs.map((d) => compiledDir(o.root, d)).filter((d) => existsSync(d));
  let version = 0;
  let loaded = signature(dirs);
  let timer: NodeJS.Timeout | undefined;
  let busy = false;
  let again = false;
  let stopped = false;

  const reload = async (): Promise<void> => {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    try {
      const sig = signature(dirs);
      if (sig === loaded) return; // rewritten with the same code (a compile of another file, a touch)
      const v = ++version;
      let catalogue: Map<string, CatalogueEntry>;
      try {
        catalogue = await loadCatalogue(o.root, o.dirs, v);
      } catch (err) {
        o.log.error({ err }, 'functions not reloaded: a module failed to load; runs keep the previous code');
        return;
      }
      if (stopped) return;
      loaded = sig;
      o.swap(catalogue, v);
    } finally {
      busy = false;
      if (again && !stopped) {
        again = false;
        schedule();
      }
    }
  };
  const schedule = () => {
    clearTimeout(timer);
    timer = setTimeout(() => void reload(), o.debounceMs);
  };

  const watchers: FSWatcher[] = dirs.map((dir) =>
    watch(dir, (_event, file) => {
      if (!file || MODULE.test(file)) schedule();
    }).on('error', (err) => o.log.warn({ err, dir }, 'cannot watch a functions directory')),
  );
  o.log.info({ dirs, debounce_ms: o.debounceMs }, 'dev mode: functions reload when their compiled files change');
  return () => {
    stopped = true;
    clearTimeout(timer);
    for (const w of watchers) w.close();
  };
}

/** A hash of every module file (helpers included) in the directories. */
function signature(dirs: string[]): string {
  const h = createHash('sha1');
  for (const dir of dirs) {
    for (const f of readdirSync(dir).sort()) {
      if (!MODULE.test(f)) continue;
      h.update(join(dir, f)).update('\0');
      try {
        h.update(readFileSync(join(dir, f)));
      } catch {
        h.update('(unreadable)'); // removed between readdir and read: the next event reloads
      }
      h.update('\0');
    }
  }
  return h.digest('hex');
}
