import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { RuntimeError } from '../errors/index.js';
import type { Reply, Request, Route } from './http-server.js';

/** Where Vite writes the console (console/vite.config.ts): dist/console, beside dist/runtime. */
const DIR = fileURLToPath(new URL('../../console', import.meta.url));
const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
};
/**
 * The console runs nothing from elsewhere: its scripts, styles and API calls are all this origin
 * (style-src allows inline style attributes, which the timeline bars and charts are drawn with).
 */
const SECURITY = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

interface Asset {
  type: string;
  raw: Buffer;
  gzip: Buffer;
  br: Buffer;
  etag: string;
}

function load(path: string): Asset {
  const raw = readFileSync(path);
  const compress = /^(text|image\/svg)/.test(TYPES[extname(path)] ?? '') && raw.length > 1024;
  return {
    type: TYPES[extname(path)] ?? 'application/octet-stream',
    raw,
    gzip: compress ? gzipSync(raw, { level: 9 }) : raw,
    br: compress ? brotliCompressSync(raw, { params: { [constants.BROTLI_PARAM_QUALITY]: 9 } }) : raw,
    etag: `"${createHash('sha256').update(raw).digest('base64url').slice(0, 22)}"`,
  };
}

/** The smallest encoding the browser takes, and the headers that say which. */
function send(req: Request, a: Asset, headers: Record<string, string>): Reply {
  if (req.header('if-none-match') === a.etag) return { status: 304, body: '', headers: { etag: a.etag, ...headers } };
  const accepts = req.header('accept-encoding');
  const [body, encoding] =
    a.br !== a.raw && /\bbr\b/.test(accepts)
      ? [a.br, 'br']
      : a.gzip !== a.raw && /\bgzip\b/.test(accepts)
        ? [a.gzip, 'gzip']
        : [a.raw, null];
  return {
    status: 200,
    body,
    contentType: a.type,
    headers: { etag: a.etag, vary: 'accept-encoding', ...(encoding ? { 'content-encoding': encoding } : {}), ...headers },
  };
}

/**
 * The web console (console/: Preact, built by Vite into dist/console): `/console` is its page,
 * `/console/assets/:file` its hashed scripts and styles (immutable: a new build has new names),
 * `/` sends people to it. Files are read and compressed once, on the first request. It reads
 * the API like any client, so API keys and proxies apply to it as to everyone.
 */
export function consoleRoutes(dir = DIR): Route[] {
  let files: Map<string, Asset> | null = null;
  const all = () => {
    if (files) return files;
    if (!existsSync(join(dir, 'index.html')))
      throw new RuntimeError('E_NOT_FOUND', `the console is not built (no ${join(dir, 'index.html')}); run npm run build`);
    const assets = join(dir, 'assets');
    files = new Map([['index.html', load(join(dir, 'index.html'))]]);
    for (const f of existsSync(assets) ? readdirSync(assets) : []) files.set(`assets/${f}`, load(join(assets, f)));
    return files;
  };
  return [
    {
      method: 'get',
      pattern: '/console',
      scope: 'public',
      // the page holds no data: every API call it makes carries the key the person types in
      handler: (req) => send(req, all().get('index.html')!, { 'cache-control': 'no-cache', ...SECURITY }),
    },
    {
      method: 'get',
      pattern: '/console/assets/:file',
      scope: 'public',
      handler: (req) => {
        const a = all().get(`assets/${req.params.file}`);
        if (!a) throw new RuntimeError('E_NOT_FOUND', `no console file ${req.params.file}; the console is at /console`);
        return send(req, a, { 'cache-control': 'public, max-age=31536000, immutable', ...SECURITY });
      },
    },
    ...['/', '/console/'].map((pattern): Route => ({
      method: 'get',
      pattern,
      scope: 'public',
      handler: (): Reply => ({ status: 302, body: '', headers: { location: '/console' } }),
    })),
  ];
}
