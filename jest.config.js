/** Tests are transpiled by esbuild (test/support/esbuild-transform.js), type-checked by `npm run lint`. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '\\.(ts|js|mjs)$': '<rootDir>/test/support/esbuild-transform.js',
  },
  // @middy/core and jose ship ESM only in some releases: let esbuild turn them into CommonJS for Jest.
  transformIgnorePatterns: ['/node_modules/(?!(@middy)/)'],
  setupFiles: ['<rootDir>/local/polyfills.ts', '<rootDir>/test/support/environment.js'],
  testTimeout: 60000,
  // Jest's default on 2 cores is one worker; most suites wait on DynamoDB Local and HTTP servers, so
  // two workers take the suite from ~320 s to ~260 s on the 2-core machines this project targets.
  maxWorkers: 2,
  // One line per test file by default (test/support/suite-reporter.js); Jest's own reporter with
  // IAP_SYNC_TEST_OUTPUT=verbose.
  reporters: [
    process.env.IAP_SYNC_TEST_OUTPUT === 'verbose' ? 'default' : '<rootDir>/test/support/suite-reporter.js',
    '<rootDir>/test/support/summary-reporter.js',
  ],
};
