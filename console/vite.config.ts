import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/**
 * The web console's build: Preact in TSX, bundled by Vite into dist/console (hashed file names:
 * the runtime serves them as immutable, index.html as no-cache). `npm run console:dev` serves it
 * with hot reload and sends /api to a runtime on WF_URL (default http://127.0.0.1:8080).
 */
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/console/',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: fileURLToPath(new URL('../dist/console', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 300,
  },
  server: { proxy: { '/api': process.env.WF_URL ?? 'http://127.0.0.1:8080' } },
});
