/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.test.json' }] },
  testTimeout: 120000,
  // builds addon, TypeScript and fixtures once: CLI and end-to-end tests run bin/pcache
  globalSetup: '<rootDir>/test/global-setup.ts',
};
