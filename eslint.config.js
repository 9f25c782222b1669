// Lint of the whole project (`npm run lint` runs `tsc --noEmit` first for the types).
const tseslint = require('typescript-eslint');
const layout = require('./eslint-slice-boundaries');

module.exports = tseslint.config(
  { ignores: ['node_modules/**', 'cdk.out/**', 'dist/**', '.iap-sync/**', 'coverage/**', 'bench/results/**', '.scratch/**'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-non-null-assertion': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      eqeqeq: ['error', 'always'],
      'no-console': 'error',
    },
  },
  {
    files: ['lambdas/**/*.ts'],
    plugins: { layout },
    rules: { 'layout/slice-boundaries': 'error' },
  },
  {
    // Command-line programs talk to their user on the console.
    files: ['bin/**', 'scripts/**', 'cli/**', 'bench/**'],
    rules: { 'no-console': 'off' },
  },
  {
    files: ['**/*.js', '**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { require: 'readonly', module: 'writable', __dirname: 'readonly', process: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
