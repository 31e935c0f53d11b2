// Jest runs in ESM mode (node --experimental-vm-modules) because NestJS 12 ships ESM only.
// Test files are compiled by @swc/jest (fast, no type check); `npm run typecheck` runs tsc over
// lib/ and test/ with TypeScript 6.0.3, the newest line that typescript-eslint supports.
export default {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.spec.ts'],
  extensionsToTreatAsEsm: ['.ts'],
  transform: { '^.+\\.ts$': ['@swc/jest'] },
  moduleNameMapper: {
    '^(\\.{1,2}/.*)\\.js$': '$1',
    '^nestjs-nsq$': '<rootDir>/lib/index.ts',
  },
  globalSetup: '<rootDir>/test/harness/global-setup.mjs',
  globalTeardown: '<rootDir>/test/harness/global-teardown.mjs',
  testTimeout: 60_000,
  // A test that fails half-way can leave a consumer's reconnect timer behind: the run must still
  // end (and fail) instead of waiting for CI's time limit. Passing runs close everything anyway.
  forceExit: true,
  maxWorkers: 2,
};
