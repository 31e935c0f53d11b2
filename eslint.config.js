import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'dist/',
      'sample/dist/',
      'node_modules/',
      'coverage/',
      '.nsq/',
      'docs/api/',
      'bench/peers/node_modules/',
      'test/nest11/node_modules/',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: { ...globals.node },
    },
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
    },
  },
  {
    files: [
      'lib/protocol/**',
      'lib/connection/**',
      'lib/consumer/**',
      'lib/producer/**',
      'lib/lookup/**',
      'lib/errors.ts',
      'lib/lifecycle.ts',
      'lib/options.ts',
      'lib/core.ts',
    ],
    rules: {
      // The client core is a plain NSQ client: it must not depend on Nest.
      'no-restricted-imports': ['error', { patterns: ['@nestjs/*', '**/nest/*'] }],
    },
  },
);
