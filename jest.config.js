// Jest runs in ESM mode (node --experimental-vm-modules) because NestJS 12 ships ESM only.
// Test files are compiled by @swc/jest (fast, no type check); `npm run typecheck` runs tsc over
// lib/ and test/ with TypeScript 6.0.3, the newest line that typescript-eslint supports.
//
// Two projects in one run (one nsqd harness, one worker pool): 'nest12' is every test against
// the repository's Nest 12; 'nest11' runs the Nest-layer tests (test/nest) again with @nestjs/*
// mapped to the Nest 11 in test/nest11 (installed by `npm run test:only`, see
// scripts/npm-ci-dir.mjs). rxjs and reflect-metadata are the repository's in both.
const base = {
  testEnvironment: 'node',
  testMatch: ['**/*.spec.ts'],
  extensionsToTreatAsEsm: ['.ts'],
  transform: { '^.+\\.ts$': ['@swc/jest'] },
  moduleNameMapper: {
    '^(\\.{1,2}/.*)\\.js$': '$1',
    '^nestjs-nsq$': '<rootDir>/lib/index.ts',
  },
};

export default {
  projects: [
    { ...base, displayName: 'nest12', roots: ['<rootDir>/test'] },
    {
      ...base,
      displayName: 'nest11',
      roots: ['<rootDir>/test/nest'],
      moduleNameMapper: {
        '^@nestjs/(common|core|microservices|platform-express|testing)(/.*)?$':
          '<rootDir>/test/nest11/node_modules/@nestjs/$1$2',
        ...base.moduleNameMapper,
      },
    },
  ],
  globalSetup: '<rootDir>/test/harness/global-setup.mjs',
  globalTeardown: '<rootDir>/test/harness/global-teardown.mjs',
  testTimeout: 60_000,
  // A test that fails half-way can leave a consumer's reconnect timer behind: the run must still
  // end (and fail) instead of waiting for CI's time limit. Passing runs close everything anyway.
  forceExit: true,
  maxWorkers: 2,
};
