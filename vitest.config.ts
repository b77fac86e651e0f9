import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // the chaos suite runs on its own (vitest.chaos.config.ts, `npm run test:chaos`)
    exclude: [...configDefaults.exclude, 'test/chaos/**'],
    // integration and e2e files start real processes against shared services: one file at a time
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
