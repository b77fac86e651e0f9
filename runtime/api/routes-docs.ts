import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { RuntimeError } from '../errors/index.js';
import type { Reply, Route } from './http-server.js';
import { openApiDocument } from './openapi.js';

const require = createRequire(import.meta.url);
/** Swagger UI's files, from its npm package (no CDN at run time): the page's script and style. */
const ASSETS: Record<string, string> = { 'swagger-ui-bundle.js': 'text/javascript', 'swagger-ui.css': 'text/css' };

const PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Workflow runtime API</title>
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <link rel="stylesheet" href="/api-docs/swagger-ui.css">
</head>
<body>
  <div id="docs"></div>
  <script src="/api-docs/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({ url: '/api/v1/openapi.json', dom_id: '#docs', deepLinking: true, persistAuthorization: true });
  </script>
</body>
</html>
`;

/**
 * The API's own description: `/api/v1/openapi.json` (generated from the routes this process
 * serves and the schemas they validate with, api/openapi.ts) and `/api-docs`, a page to read it
 * (Swagger UI: one dependency-free package of static files, chosen over Redoc and Scalar, whose
 * packages pull in a front-end framework each). `routes()` is every route the server serves,
 * these included; the document is built once, on first request.
 */
export function docRoutes(routes: () => Route[], o: { version: string; metricsPath: string }): Route[] {
  let doc: string | null = null;
  const assets = new Map<string, Buffer>();
  const cached = { 'cache-control': 'public, max-age=86400' };
  return [
    {
      method: 'get',
      pattern: '/api/v1/openapi.json',
      scope: 'public',
      openOnPurpose: true, // the description of the API is no secret: /api-docs reads it without a key
      handler: () => {
        doc ??= JSON.stringify(openApiDocument(routes(), o));
        return { status: 200, body: doc, contentType: 'application/json', headers: { 'cache-control': 'no-cache' } };
      },
    },
    {
      method: 'get',
      pattern: '/api-docs',
      scope: 'public',
      handler: (): Reply => ({
        status: 200,
        body: PAGE,
        contentType: 'text/html; charset=utf-8',
        headers: { 'cache-control': 'no-cache' },
      }),
    },
    {
      method: 'get',
      pattern: '/api-docs/:file',
      scope: 'public',
      handler: (req): Reply => {
        const type = ASSETS[req.params.file];
        if (!type) throw new RuntimeError('E_NOT_FOUND', `no file ${req.params.file}; the API documentation is at /api-docs`);
        let body = assets.get(req.params.file);
        if (!body) {
          body = readFileSync(join(dirname(require.resolve('swagger-ui-dist/package.json')), req.params.file));
          assets.set(req.params.file, body);
        }
        return { status: 200, body, contentType: type, headers: cached };
      },
    },
  ];
}
