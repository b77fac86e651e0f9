import { readdirSync, existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isDefinedFunction, type DefinedFunction } from '../sdk/index.js';

export interface CatalogueEntry {
  name: string;
  file: string;
  fn: DefinedFunction;
  /** shipped with the runtime (from `steps/`), so trusted to run inline when it asks to */
  builtin: boolean;
}

/**
 * Where the compiled modules of a configured directory live: `steps` and
 * `functions` are written in TypeScript and compiled to `dist/<dir>`; an
 * absolute directory of plain .js/.mjs modules is used as it is.
 */
export function compiledDir(root: string, dir: string): string {
  const dist = resolve(root, 'dist', dir);
  return existsSync(dist) ? dist : resolve(root, dir);
}

/**
 * Imports every step module from the given directories; later directories
 * override earlier ones. `version` (dev mode) is added to each module's URL:
 * ESM caches modules by URL, so a new version imports the files anew.
 */
export async function loadCatalogue(root: string, dirs: readonly string[], version?: number): Promise<Map<string, CatalogueEntry>> {
  const out = new Map<string, CatalogueEntry>();
  for (const dir of dirs) {
    const abs = compiledDir(root, dir);
    if (!existsSync(abs)) continue;
    // compiled from TypeScript: a .js whose .ts was deleted or renamed is stale output, not a function
    const source = abs === resolve(root, dir) ? null : resolve(root, dir);
    for (const f of readdirSync(abs).sort()) {
      if (!/\.(m?js)$/.test(f) || f.endsWith('.d.js') || f.startsWith('_')) continue;
      if (source && !existsSync(join(source, f.replace(/\.(m?)js$/, '.$1ts')))) continue;
      const file = join(abs, f);
      const url = pathToFileURL(file).href + (version ? `?v=${version}` : '');
      let mod: { default?: unknown };
      try {
        mod = (await import(url)) as { default?: unknown };
      } catch (err) {
        throw new Error(`${file}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
      }
      if (!isDefinedFunction(mod.default)) {
        throw new Error(`${file}: the default export must be defineFunction({...}) from the runtime SDK`);
      }
      const name = mod.default.name ?? basename(f).replace(/\.m?js$/, '');
      out.set(name, { name, file, fn: mod.default, builtin: dir === 'steps' });
    }
  }
  return out;
}
