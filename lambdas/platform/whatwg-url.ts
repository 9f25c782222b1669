/**
 * Stands in for the `whatwg-url` package in the deployed bundles (an esbuild alias in
 * lib/constructs/lambda-function.ts). Its only importer is node-fetch 2, which Apple's library loads
 * (for OCSP, when online checks are on) and which uses it as a fallback only:
 * `const URL = Url.URL || whatwgUrl.URL`, where `Url` is `node:url`, whose URL is the same WHATWG
 * URL standard and always exists on Node. The fallback costs about 290 kB of every Apple bundle
 * (whatwg-url and tr46's Unicode mapping table, parsed at require). Not used by `npm start` or tests.
 */
export const URL = globalThis.URL;
export const URLSearchParams = globalThis.URLSearchParams;

export default { URL, URLSearchParams };
