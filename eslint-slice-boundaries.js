// The layout rule of lambdas/ (README "Layout"), as an ESLint rule so a change cannot quietly break it:
// - platform/ imports nothing of the app; stores/ imports only platform/; events/ only platform/ and stores/.
// - A slice (tenants, purchases, entitlements, lifecycle, webhooks, openapi) imports platform/, stores/,
//   events/ and other slices only through their index.ts.
// - Inside a slice, domain/ never imports adapters/.
const path = require('node:path');

const LAMBDAS = path.join(__dirname, 'lambdas');
const LIBRARIES = { platform: [], stores: ['platform'], events: ['platform', 'stores'] };

function locate(file) {
  const rel = path.relative(LAMBDAS, file);
  if (rel.startsWith('..') || path.isAbsolute(rel)) return undefined;
  const [unit, ...rest] = rel.split(path.sep);
  return { unit, rest };
}

const sliceBoundaries = {
  meta: {
    type: 'problem',
    docs: { description: 'lambdas/ slices import each other only through index.ts; platform, stores and events stay below the slices' },
    schema: [],
  },
  create(context) {
    const file = context.filename;
    const from = locate(file);
    if (!from || from.rest.length === 0) return {};
    function check(node, source) {
      if (typeof source !== 'string' || !source.startsWith('.')) return;
      const target = locate(path.resolve(path.dirname(file), source));
      if (!target) return;
      const report = (message) => context.report({ node, message: `${message} (import '${source}')` });
      if (target.unit === from.unit) {
        if (from.rest[0] === 'domain' && target.rest[0] === 'adapters') report(`${from.unit}/domain must not import ${from.unit}/adapters: depend on a port`);
        return;
      }
      if (from.unit in LIBRARIES) {
        const allowed = LIBRARIES[from.unit];
        if (!allowed.includes(target.unit)) {
          report(allowed.length ? `${from.unit}/ may import only ${allowed.join(', ')}` : `${from.unit}/ must import nothing of the app`);
        }
        return;
      }
      if (target.unit in LIBRARIES) return;
      const isIndex = target.rest.length === 0 || (target.rest.length === 1 && /^index(\.ts)?$/.test(target.rest[0]));
      if (!isIndex) report(`import slice ${target.unit} through its index.ts, not its internals`);
    }
    return {
      ImportDeclaration: (node) => check(node, node.source.value),
      ExportNamedDeclaration: (node) => node.source && check(node, node.source.value),
      ExportAllDeclaration: (node) => check(node, node.source.value),
      ImportExpression: (node) => node.source.type === 'Literal' && check(node, node.source.value),
    };
  },
};

module.exports = { rules: { 'slice-boundaries': sliceBoundaries } };
