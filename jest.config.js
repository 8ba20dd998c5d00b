// Jest runs in its default CommonJS mode (the mode the Temporal SDK and its test kit are built for).
// `got` and `openid-client` (and their dependencies) are ESM-only; Node 20.19+ loads them through
// require(esm) at run time, but Jest has its own module loader, so those packages are transformed
// to CommonJS by babel-jest. The list of ESM-only packages is read from node_modules so that a
// dependency upgrade that adds one does not break the tests.
const fs = require('node:fs');
const path = require('node:path');

function esmOnlyPackages(dir = path.join(__dirname, 'node_modules')) {
  const names = [];
  for (const entry of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
    if (entry.startsWith('.')) continue;
    const scoped = entry.startsWith('@');
    const children = scoped ? fs.readdirSync(path.join(dir, entry)).map((c) => `${entry}/${c}`) : [entry];
    for (const name of children) {
      try {
        const pkg = JSON.parse(fs.readFileSync(path.join(dir, name, 'package.json'), 'utf8'));
        if (pkg.type === 'module') names.push(name);
      } catch {
        /* not a package */
      }
    }
  }
  return names;
}

const esm = esmOnlyPackages().map((n) => n.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'));

/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.json' }],
    '^.+\\.m?js$': ['babel-jest', { plugins: ['@babel/plugin-transform-modules-commonjs'], babelrc: false, configFile: false }],
  },
  transformIgnorePatterns: [`/node_modules/(?!(${esm.join('|')})/)`],
  globalSetup: '<rootDir>/test/support/globalSetup.ts',
  globalTeardown: '<rootDir>/test/support/globalTeardown.ts',
  testTimeout: 120000,
  // Two files at a time: most of a file's time is spent waiting on real clocks (rate limits, polls, retries), not
  // on the CPU. Each file has its own database, sandbox, API port and Temporal task queue, so they do not meet.
  // JEST_MAX_WORKERS=1 runs them one by one.
  maxWorkers: Number(process.env.JEST_MAX_WORKERS) || 2,
};
