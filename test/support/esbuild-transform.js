// Jest transformer: esbuild turns TypeScript and ESM-only dependencies into CommonJS.
// Type errors are caught by `tsc --noEmit` in `npm run lint`, not here, so tests stay fast on 2 cores.
const { transformSync } = require('esbuild');
const { createHash } = require('node:crypto');

module.exports = {
  process(source, filename) {
    const loader = filename.endsWith('.ts') ? 'ts' : 'js';
    const out = transformSync(source, {
      loader,
      format: 'cjs',
      target: 'node20',
      sourcemap: 'inline',
      sourcefile: filename,
    });
    return { code: out.code };
  },
  getCacheKey(source, filename) {
    return createHash('sha256').update(filename).update('\0').update(source).update('v1').digest('hex');
  },
};
