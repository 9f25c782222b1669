import fc from 'fast-check';
import * as z from 'zod';
import { AppleRegisterBody, GoogleRegisterBody } from '../../lambdas/purchases/schemas';
import { MAX_BODY_BYTES } from '../../lambdas/platform/schema-primitives';

/** One generated request and what kind of damage it carries (for the counts by category). */
export interface FuzzRequest {
  category: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string | Buffer;
  /** The request targets a route of the contract with its method (unknown routes may answer REQ0008). */
  knownRoute: boolean;
}

export interface FuzzContext {
  publisherId: number;
  publisherToken: string;
  /** A valid customer JWT and its customer. */
  jwt: string;
  jwtCustomerId: number;
  customerIds: number[];
  /** Real purchases of the simulator, so some generated registers are valid end to end. */
  appleTransactionIds: string[];
  googlePurchaseTokens: string[];
  packageName: string;
  /** Forged, expired, alg-none and otherwise bad bearer tokens (made ahead, signing is async). */
  badJwts: string[];
  /** Existing synchronization ids, for the status route. */
  synchronizationIds: string[];
}

/** A request being generated: some categories patch headers after the route and body are chosen. */
type Draft = FuzzRequest & {
  headerPatch?: Record<string, string | undefined>;
  /** null: send no Content-Type at all. */
  contentTypeOverride?: string | null;
};

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonSchema = {
  type?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  $ref?: string;
  $defs?: Record<string, JsonSchema>;
};

/**
 * A fast-check arbitrary of values valid for a zod schema, through its JSON Schema (z.toJSONSchema):
 * the subset the API bodies use (objects, integers with bounds, strings with pattern and lengths).
 */
export function arbitraryFromZod(schema: z.ZodType): fc.Arbitrary<Record<string, Json>> {
  const root = z.toJSONSchema(schema) as JsonSchema;
  const resolved = root.$ref ? root.$defs?.[root.$ref.replace('#/$defs/', '')] : root;
  if (!resolved) throw new Error('unresolvable schema');
  return fromJsonSchema(resolved) as fc.Arbitrary<Record<string, Json>>;
}

function fromJsonSchema(schema: JsonSchema): fc.Arbitrary<Json> {
  switch (schema.type) {
    case 'object': {
      const props = Object.entries(schema.properties ?? {});
      const required = new Set(schema.required ?? []);
      const model: Record<string, fc.Arbitrary<Json>> = {};
      for (const [name, sub] of props) model[name] = fromJsonSchema(sub);
      return fc.record(model, { requiredKeys: props.map(([n]) => n).filter((n) => required.has(n)) }) as fc.Arbitrary<Json>;
    }
    case 'integer':
      return fc.integer({ min: schema.minimum ?? -(2 ** 31), max: schema.maximum ?? 2 ** 31 - 1 });
    case 'number':
      return fc.double({ noNaN: true });
    case 'boolean':
      return fc.boolean();
    case 'string': {
      const base = schema.pattern
        ? fc.stringMatching(new RegExp(schema.pattern))
        : fc.string({ minLength: schema.minLength ?? 0, maxLength: Math.min(schema.maxLength ?? 64, 64) });
      return base.filter((s) => s.length >= (schema.minLength ?? 0) && s.length <= (schema.maxLength ?? Number.MAX_SAFE_INTEGER));
    }
    default:
      return fc.constant(null);
  }
}

/** Strings that have hurt parsers, loggers, databases and terminals. */
export const HOSTILE_STRINGS: string[] = [
  '',
  ' ',
  '\u0000',
  'abc\u0000def',
  '\u202E\u0041\u0042',
  '\uFEFF123',
  '\uD800',
  '\uDFFF\uD800',
  '😀'.repeat(100),
  'Z̴̡̛̲͎̬͓̏̓̍a̸̧̯̿l̷̙̾g̶̲̈́o̵͚͊',
  '١٢٣٤',
  '１２３',
  "' OR '1'='1",
  '{"$ne":null}',
  '${jndi:ldap://x/a}',
  '{{7*7}}',
  '<script>alert(1)</script>',
  '../../etc/passwd',
  '%00',
  '\r\nX-Injected: 1',
  '__proto__',
  'constructor',
  '1e309',
  '-0',
  '9'.repeat(65),
  '1'.repeat(64),
  'a'.repeat(4097),
  'x'.repeat(15_000),
  '2000000000000001 ',
  ' 2000000000000001',
  '0x1F',
  'NaN',
  'null',
];

const hostileString = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...HOSTILE_STRINGS) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 200 }) },
);

const wrongTypeValue: fc.Arbitrary<Json> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.double(),
  fc.constantFrom(0, -1, 2 ** 31, 2 ** 53, 1.5, Number.MAX_VALUE),
  fc.string({ maxLength: 20 }),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.integer(), { maxKeys: 3 }),
);

/** Headers node:http accepts (latin-1, no CR/LF/NUL): bad values, not broken framing. */
function headerSafe(value: string): string {
  return value.replace(/[^\t\x20-\x7e\x80-\xff]/g, '');
}

const ROUTES = [
  { method: 'POST', path: '/storekit2/purchases', store: 'apple' },
  { method: 'POST', path: '/storekit2/purchases/transfers', store: 'apple' },
  { method: 'POST', path: '/google-play/purchases', store: 'google' },
  { method: 'POST', path: '/google-play/purchases/transfers', store: 'google' },
] as const;

const UNKNOWN_PATHS = [
  '/',
  '/storekit2',
  '/storekit2/purchases/',
  '//storekit2/purchases',
  '/storekit2/purchases/synchronizations',
  '/storekit2/purchases/synchronizations/',
  '/STOREKIT2/PURCHASES',
  '/google-play/purchases/x/y',
  '/__proto__',
  '/admin',
  '/openapi.yaml',
  '/storekit2/purchases%2Ftransfers',
  '/storekit2/purchases/../purchases',
];

/** The arbitrary of fuzz requests for a running stack. */
export function fuzzRequests(ctx: FuzzContext): fc.Arbitrary<FuzzRequest> {
  const appleValid = arbitraryFromZod(AppleRegisterBody);
  const googleValid = arbitraryFromZod(GoogleRegisterBody);
  const validCreds = fc.constantFrom<Record<string, string>>(
    { 'x-publisher-id': String(ctx.publisherId), 'x-publisher-token': ctx.publisherToken },
    { 'x-publisher-id': String(ctx.publisherId), authorization: `Bearer ${ctx.jwt}` },
  );
  const json = { 'content-type': 'application/json' };

  /** A schema-valid body, biased towards real customers and real purchases so some are accepted. */
  const body = (store: 'apple' | 'google') =>
    fc
      .tuple(store === 'apple' ? appleValid : googleValid, fc.nat(99), fc.constantFrom(...ctx.customerIds), fc.nat())
      .map(([b, dice, customer, pick]) => {
        const out: Record<string, Json> = { ...b };
        if (dice < 60) out.cleengCustomerId = customer;
        if (dice < 30) {
          if (store === 'apple') out.transactionId = ctx.appleTransactionIds[pick % ctx.appleTransactionIds.length] ?? '1';
          else out.purchaseToken = ctx.googlePurchaseTokens[pick % ctx.googlePurchaseTokens.length] ?? 'x';
        }
        if (store === 'google' && dice < 70) {
          out.packageName = ctx.packageName;
          out.productType = 'subscription';
          delete out.productId;
        }
        if (dice < 50) out.ipAddress = '203.0.113.7';
        return out;
      });
  const route = fc.constantFrom(...ROUTES);

  const post = (category: string, make: (b: Record<string, Json>, r: (typeof ROUTES)[number]) => fc.Arbitrary<Partial<Draft>>) =>
    route.chain((r) =>
      fc.tuple(body(r.store), validCreds).chain(([b, creds]) =>
        make(b, r).map(
          (over): Draft => ({
            category,
            method: r.method,
            path: r.path,
            headers: { ...json, ...creds },
            body: JSON.stringify(b),
            knownRoute: true,
            ...over,
          }),
        ),
      ),
    );

  const valid = post('valid body', (b) => fc.constant({ body: JSON.stringify(b) }));
  const wrongType = post('wrong type', (b) =>
    fc.tuple(fc.constantFrom(...Object.keys(b)), wrongTypeValue).map(([k, v]) => ({ body: JSON.stringify({ ...b, [k]: v }) })),
  );
  const missing = post('missing field', (b) =>
    fc.subarray(Object.keys(b), { minLength: 1 }).map((drop) => {
      const out = { ...b };
      for (const k of drop) delete out[k];
      return { body: JSON.stringify(out) };
    }),
  );
  const extra = post('extra field', (b) =>
    fc
      .tuple(fc.oneof(fc.constantFrom('status', 'result', 'offerId', 'accessGranted', 'publisherId', '__proto__', 'constructor', 'prototype'), fc.string({ maxLength: 30 })), wrongTypeValue)
      .map(([k, v]) => ({ body: `${JSON.stringify(b).slice(0, -1)}${Object.keys(b).length ? ',' : ''}${JSON.stringify(k)}:${JSON.stringify(v)}}` })),
  );
  const hostile = post('hostile string', (b) =>
    fc.tuple(fc.constantFrom(...Object.keys(b)), hostileString).map(([k, v]) => ({ body: JSON.stringify({ ...b, [k]: v }) })),
  );
  const oversize = post('oversize body', (b) =>
    fc.oneof(
      { weight: 20, arbitrary: fc.integer({ min: MAX_BODY_BYTES + 1, max: 64 * 1024 }) },
      { weight: 1, arbitrary: fc.constant(1024 * 1024 + 1) },
    ).map((size) => {
      const padded = JSON.stringify({ ...b, pad: '' });
      return { body: `${padded.slice(0, -2)}${'x'.repeat(Math.max(0, size - padded.length))}"}` };
    }),
  );
  const invalidJson = post('invalid JSON', (b) =>
    fc
      .oneof(
        fc.constantFrom('', '{', '}', '[]', 'null', '42', '"str"', 'true', "{'a':1}", '{"a":1,}', '\uFEFF{}', '{"a":1}{"b":2}', 'NaN', '{"cleengCustomerId":1e999}'),
        fc.nat(200).map((cut) => JSON.stringify(b).slice(0, cut % Math.max(1, JSON.stringify(b).length))),
        fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes).toString('latin1')),
        fc.constant(JSON.stringify(b).replace(/"/g, "'")),
      )
      .map((text) => ({ body: text })),
  );
  const contentType = post('wrong content type', () =>
    fc
      .constantFrom(
        undefined,
        'text/plain',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        'application/xml',
        'application/jsonp',
        'application/json; charset=latin1',
        'APPLICATION/JSON',
        'application/json, text/plain',
        '*/*',
        '',
      )
      .map((ct): Partial<Draft> => ({ contentTypeOverride: ct ?? null })),
  );
  const badHeaders = post('bad headers', () =>
    fc
      .oneof(
        fc.constantFrom('', '0', '-1', '2147483648', '99999999999', ' 1', '1 ', '1.0', '0x1', '01', '1,1', 'abc', '\u00e9').map((v) => ({ 'x-publisher-id': v })),
        fc.constant({ 'x-publisher-id': undefined }),
        fc.string({ unit: 'binary', maxLength: 300 }).map((v) => ({ 'correlation-id': headerSafe(v) })),
        fc.constantFrom('', 'x'.repeat(257), '\u00ff\u00fe', '6f1c2b7e-8a3d-4c5e-9f01-23456789abcd').map((v) => ({ 'correlation-id': v })),
        fc.constantFrom('x-app-version', 'x-device-id', 'x-device-type', 'x-user-action').chain((name) =>
          fc.constantFrom('y'.repeat(257), '\u00e9t\u00e9', '', 'a'.repeat(5000)).map((v) => ({ [name]: v })),
        ),
      )
      .map((h): Partial<Draft> => ({ headerPatch: h })),
  );
  const badAuth = post('bad credentials', () =>
    fc
      .oneof(
        fc.constantFrom(...ctx.badJwts).map((t) => ({ authorization: `Bearer ${t}`, 'x-publisher-token': undefined })),
        fc.constantFrom('Bearer', 'Bearer ', 'Basic dXNlcjpwYXNz', 'bearer x.y.z', `Bearer ${'a'.repeat(9000)}`, 'Token abc').map((v) => ({ authorization: v, 'x-publisher-token': undefined })),
        fc.oneof(fc.constantFrom('', 'pt_wrong', `${ctx.publisherToken}x`, ctx.publisherToken.slice(0, -1), ctx.publisherToken.toUpperCase(), 'x'.repeat(600)), fc.string({ unit: 'binary', maxLength: 100 }).map(headerSafe)).map((v) => ({
          'x-publisher-token': v,
          authorization: undefined,
        })),
        fc.constant({ 'x-publisher-token': undefined, authorization: undefined }),
        fc.constant({ 'x-publisher-id': String(ctx.publisherId + 1) }),
        fc.constant({ 'x-publisher-token': ctx.publisherToken, authorization: `Bearer ${ctx.jwt}` }),
      )
      .map((h): Partial<Draft> => ({ headerPatch: h })),
  );

  const statusRoute = fc
    .tuple(
      fc.constantFrom('/storekit2', '/google-play'),
      fc.oneof(
        fc.constantFrom(...(ctx.synchronizationIds.length ? ctx.synchronizationIds : ['x'])),
        fc.tuple(fc.uuid(), fc.boolean()).map(([u, upper]) => (upper ? u.toUpperCase() : u)),
        fc.constantFrom('12345', 'not-a-uuid', '%00', '..%2F..%2Fetc', '%2F', 'x'.repeat(5000), '%E2%80%AE', '%ZZ', '{synchronizationId}'),
        fc.string({ unit: 'grapheme', maxLength: 40 }).map((v) => encodeURIComponent(v)),
      ),
      fc.oneof(validCreds, fc.constantFrom(...ctx.badJwts).map((t) => ({ 'x-publisher-id': String(ctx.publisherId), authorization: `Bearer ${t}` }))),
      fc.constantFrom('', '?a=1', '?synchronizationId=x', '?%00'),
    )
    .map(([prefix, id, creds, query]): Draft => ({
      category: 'status route',
      method: 'GET',
      path: `${prefix}/purchases/synchronizations/${id}${query}`,
      headers: { ...creds },
      // An empty id is another path (`…/synchronizations/`), which no route serves.
      knownRoute: id !== '',
    }));

  const unknownRoute = fc
    .tuple(fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'), fc.oneof(fc.constantFrom(...UNKNOWN_PATHS), fc.constantFrom(...ROUTES.map((r) => r.path))), validCreds)
    .filter(([method, path]) => !(method === 'POST' && ROUTES.some((r) => r.path === path)))
    .map(([method, path, creds]): Draft => ({
      category: 'unknown route or method',
      method,
      path,
      headers: { ...json, ...creds },
      body: method === 'GET' || method === 'OPTIONS' ? undefined : '{}',
      knownRoute: false,
    }));

  return fc
    .oneof(
      { weight: 8, arbitrary: valid },
      { weight: 10, arbitrary: wrongType },
      { weight: 8, arbitrary: missing },
      { weight: 8, arbitrary: extra },
      { weight: 12, arbitrary: hostile },
      { weight: 4, arbitrary: oversize },
      { weight: 8, arbitrary: invalidJson },
      { weight: 6, arbitrary: contentType },
      { weight: 10, arbitrary: badHeaders },
      { weight: 12, arbitrary: badAuth },
      { weight: 10, arbitrary: statusRoute },
      { weight: 4, arbitrary: unknownRoute },
    )
    .map(applyPatches);
}

/** Applies the header patch and content-type override some categories carry. */
function applyPatches(req: Draft): FuzzRequest {
  const { headerPatch, contentTypeOverride, ...rest } = req;
  const headers: Record<string, string> = { ...rest.headers };
  if (contentTypeOverride !== undefined) {
    delete headers['content-type'];
    if (contentTypeOverride !== null) headers['content-type'] = contentTypeOverride;
  }
  for (const [k, v] of Object.entries(headerPatch ?? {})) {
    if (v === undefined) delete headers[k];
    else headers[k] = v;
  }
  return { ...rest, headers };
}

/** What the notification route's cases need: the publisher whose route takes Apple's notifications. */
export interface NotificationFuzzContext {
  publisherId: number;
}

/** Path segments that name no publisher configured for Apple (unknown, malformed, out of range). */
const WRONG_PUBLISHER_IDS = ['999', '0', '-1', '01', '1.0', 'abc', '2147483648', '99999999999', '%20', '1%00', 'x'.repeat(300)];

/** A JWS-looking string: three base64url parts, sometimes a real-looking header and payload, never Apple's signature. */
const jwsLike: fc.Arbitrary<string> = fc.oneof(
  fc
    .tuple(fc.base64String({ maxLength: 200 }), fc.base64String({ maxLength: 2000 }), fc.base64String({ maxLength: 200 }))
    .map(([h, p, s]) => [h, p, s].map((part) => part.replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_')).join('.')),
  fc
    .tuple(
      fc.constantFrom('ES256', 'none', 'HS256', 'RS256'),
      fc.constantFrom('DID_RENEW', 'REFUND', 'EXPIRED', 'TEST', 'SUBSCRIBED', 'UNKNOWN'),
      fc.uuid(),
      fc.boolean(),
    )
    .map(([alg, notificationType, notificationUUID, withChain]) => {
      const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
      const header = { alg, ...(withChain ? { x5c: ['MIIB', 'MIIC', 'MIID'] } : {}) };
      const payload = { notificationType, notificationUUID, version: '2.0', signedDate: Date.now(), data: { bundleId: 'com.example.iapsync', environment: 'Production', signedTransactionInfo: 'a.b.c' } };
      return `${b64(header)}.${b64(payload)}.${Buffer.from('not-apple').toString('base64url')}`;
    }),
  fc.constantFrom('', '.', '..', 'a.b.c', 'a.b', 'a.b.c.d', 'eyJhbGciOiJFUzI1NiJ9', 'eyJhbGciOiJFUzI1NiJ9.e30.', ...HOSTILE_STRINGS),
);

/**
 * `POST /storekit2/notifications/{publisherId}` with what Apple never sends: not JSON, no
 * `signedPayload`, JWS-looking strings not signed by Apple, huge bodies, wrong publisher ids.
 * No credentials on purpose (the route takes none). The contract allows only `400 NOTIF0001`,
 * `400 REQ0001` and `413 REQ0006` here (§9). Kept out of {@link fuzzRequests}, whose judge reads
 * only the §6 code table (NOTIF0001 is added to it in §9).
 */
export function notificationRequests(ctx: NotificationFuzzContext): fc.Arbitrary<FuzzRequest> {
  const own = `/storekit2/notifications/${ctx.publisherId}`;
  const json = { 'content-type': 'application/json' };
  const request = (category: string, path: string, body: string | Buffer, headers: Record<string, string> = json): FuzzRequest => ({
    category,
    method: 'POST',
    path,
    headers,
    body,
    knownRoute: true,
  });
  const notJson = fc
    .oneof(
      fc.constantFrom('', '{', 'null', '[]', '42', '"signedPayload"', "{'signedPayload':'a.b.c'}", '{"signedPayload":"a.b.c",}', '\uFEFF{"signedPayload":"a.b.c"}'),
      fc.uint8Array({ maxLength: 500 }).map((bytes) => Buffer.from(bytes).toString('latin1')),
      fc.string({ unit: 'binary', maxLength: 300 }),
    )
    .map((body) => request('notification: not JSON', own, body));
  const noSignedPayload = fc
    .oneof(
      fc.constant({}),
      fc.constant({ signedpayload: 'a.b.c' }),
      fc.constant({ payload: 'a.b.c' }),
      fc.constant({ message: { data: 'e30=' } }),
      wrongTypeValue.map((v) => ({ signedPayload: v })),
    )
    .filter((b) => typeof (b as { signedPayload?: unknown }).signedPayload !== 'string')
    .map((b) => request('notification: no signedPayload', own, JSON.stringify(b)));
  const forged = fc
    .tuple(jwsLike, fc.constantFrom<Record<string, string>>(json, { 'content-type': 'text/plain' }, {}, { ...json, 'x-publisher-id': '2' }))
    .map(([jws, headers]) => request('notification: forged JWS', own, JSON.stringify({ signedPayload: jws }), headers));
  const extraFields = jwsLike.map((jws) => request('notification: extra fields', own, `{"signedPayload":${JSON.stringify(jws)},"notificationType":"REFUND","__proto__":{"admin":true}}`));
  const huge = fc
    .oneof(
      { weight: 4, arbitrary: fc.integer({ min: 64 * 1024 + 1, max: 200 * 1024 }) },
      { weight: 1, arbitrary: fc.constant(1024 * 1024 + 1) },
    )
    .map((size) => request('notification: huge body', own, JSON.stringify({ signedPayload: 'a'.repeat(size) })));
  const wrongPublisher = fc
    .tuple(fc.constantFrom(...WRONG_PUBLISHER_IDS), jwsLike)
    .map(([id, jws]) => request('notification: wrong publisher id', `/storekit2/notifications/${id}`, JSON.stringify({ signedPayload: jws })));
  return fc.oneof(
    { weight: 3, arbitrary: notJson },
    { weight: 3, arbitrary: noSignedPayload },
    { weight: 6, arbitrary: forged },
    { weight: 1, arbitrary: extraFields },
    { weight: 2, arbitrary: huge },
    { weight: 3, arbitrary: wrongPublisher },
  );
}

/** What the Google push route's cases need: the publisher, and a genuine push token its subscription would carry. */
export interface GooglePushFuzzContext {
  publisherId: number;
  /** A push token the local stack accepts (the simulator's issuer, the publisher's service account and audience). */
  validToken: string;
  packageName: string;
}

/**
 * `POST /google-play/notifications/{publisherId}` with what Pub/Sub never sends: not JSON, no
 * `message.data`, data that is not base64 of a DeveloperNotification, other apps' package names,
 * huge bodies, wrong publisher ids, and tokens that are missing, malformed or forged. Allowed
 * answers (contract §9): `400 REQ0001`, `400 NOTIF0001`, `401 AUTH0002`, `413 REQ0006`.
 */
export function googlePushRequests(ctx: GooglePushFuzzContext): fc.Arbitrary<FuzzRequest> {
  const own = `/google-play/notifications/${ctx.publisherId}`;
  const withToken = (token: string | undefined): Record<string, string> => ({ 'content-type': 'application/json', ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}) });
  const request = (category: string, path: string, body: string | Buffer, headers: Record<string, string>): FuzzRequest => ({ category, method: 'POST', path, headers, body, knownRoute: true });
  const push = (data: string, messageId = 'fuzz-message') => JSON.stringify({ message: { data, messageId, publishTime: new Date().toISOString() }, subscription: 'projects/p/subscriptions/s' });
  const b64 = (value: string) => Buffer.from(value).toString('base64');
  const notJson = fc
    .oneof(fc.constantFrom('', '{', 'null', '[]', '42', '{"message":', '\uFEFF{}'), fc.string({ unit: 'binary', maxLength: 300 }))
    .map((body) => request('push: not JSON', own, body, withToken(ctx.validToken)));
  const noData = fc
    .oneof(fc.constant({}), fc.constant({ message: {} }), fc.constant({ message: { messageId: '1' } }), wrongTypeValue.map((v) => ({ message: { data: v, messageId: '1' } })))
    .map((b) => request('push: no message.data', own, JSON.stringify(b), withToken(ctx.validToken)));
  const badData = fc
    .oneof(
      fc.constantFrom('!!!', '====', 'e30', b64('not json'), b64('[]'), b64('{"version":"1.0"}'), b64('{"packageName":42}')),
      fc.string({ maxLength: 200 }).map(b64),
      fc.constantFrom('com.other.app', 'com.example.iapsync.evil', '').map((packageName) =>
        b64(JSON.stringify({ version: '1.0', packageName, eventTimeMillis: '1', subscriptionNotification: { version: '1.0', notificationType: 2, purchaseToken: 't', subscriptionId: 'premium_monthly' } })),
      ),
    )
    .map((data) => request('push: data not a DeveloperNotification of this app', own, push(data), withToken(ctx.validToken)));
  const badToken = fc
    .oneof(fc.constant(undefined), fc.constantFrom('', 'x', 'a.b.c', `${ctx.validToken}x`, ctx.validToken.split('.').slice(0, 2).join('.') + '.'), jwsLike)
    // Only what an HTTP client can put in a header (Node refuses control characters before sending).
    .filter((token) => token === undefined || /^[\x21-\x7e]*$/.test(token))
    .map((token) => request('push: token missing or forged', own, push(b64(JSON.stringify({ version: '1.0', packageName: ctx.packageName, eventTimeMillis: '1', testNotification: { version: '1.0' } }))), withToken(token)));
  const huge = fc.integer({ min: 64 * 1024 + 1, max: 200 * 1024 }).map((size) => request('push: huge body', own, push('a'.repeat(size)), withToken(ctx.validToken)));
  const wrongPublisher = fc
    .constantFrom(...WRONG_PUBLISHER_IDS)
    .map((id) => request('push: wrong publisher id', `/google-play/notifications/${id}`, push(b64('{}')), withToken(ctx.validToken)));
  return fc.oneof(
    { weight: 2, arbitrary: notJson },
    { weight: 2, arbitrary: noData },
    { weight: 4, arbitrary: badData },
    { weight: 4, arbitrary: badToken },
    { weight: 1, arbitrary: huge },
    { weight: 2, arbitrary: wrongPublisher },
  );
}
