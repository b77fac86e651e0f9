// Lint: typescript-eslint's recommended type-checked rules (no-floating-promises and
// no-misused-promises among them) over the runtime, built-in steps, functions, bench and tests.
// Formatting is prettier's job (`npm run lint` runs both).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'node_modules/**',
      'deploy/**',
      'bench/k6/**',
      'bench/results/**',
      '.data/**',
      '**/*.d.ts',
      'eslint.config.js',
      'console/dist/**',
      // the CLI's shim: plain JS, a few lines that build and import runtime/cli/wf.ts (linted)
      'bin/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { project: './tsconfig.eslint.json', tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // `_name` marks a value left unused on purpose (a destructured field dropped from a copy)
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    // tests read JSON answers as `any` on purpose: asserting on them is the test
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      // a runner or handler written as `async` returns a promise, as its signature asks
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    // the web console: browser code, type-checked against its own tsconfig (DOM, Preact's JSX)
    files: ['console/src/**/*.{ts,tsx}'],
    languageOptions: {
      parserOptions: { project: './console/tsconfig.json', tsconfigRootDir: import.meta.dirname },
    },
  },
);
