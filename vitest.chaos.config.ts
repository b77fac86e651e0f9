import { defineConfig } from 'vitest/config';

// The chaos suite (test/chaos/): faults injected into private servers and processes under load.
// Minutes long, so apart from `npm test`; `npm run test:chaos` builds and runs it.
export default defineConfig({
  test: {
    include: ['test/chaos/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});
