import * as z from 'zod';
import { ERROR_CODES, type ErrorCode } from '../platform/errors';
import {
  AcceptedResponse,
  AppleRegisterBody,
  AppleTransferBody,
  GoogleRegisterBody,
  GoogleTransferBody,
  SynchronizationStatusResponse,
} from '../purchases';
import { EntitlementChangedDetail, EntitlementChangedWebhookBody, SyncResultDetail, SyncResultWebhookBody } from '../events/schemas';
import { EntitlementsResponse } from '../entitlements';
import { AppleNotificationBody, GooglePushBody, NotificationAcknowledged } from '../lifecycle';
import { ErrorResponse } from '../platform/schema-primitives';

/**
 * The OpenAPI 3.1 document, generated from the same zod schemas the handlers validate with
 * (`GET /openapi.json`). Nothing here restates a field: only routes, codes and prose.
 */
interface RouteDoc {
  method: 'get' | 'post';
  path: string;
  summary: string;
  body?: { name: string; schema: z.ZodType };
  success: { status: number; name: string; schema: z.ZodType };
  errors: ErrorCode[];
  pathParam?: string;
  /** The path parameter's JSON Schema (default: a UUID). */
  pathParamSchema?: Record<string, unknown>;
  authenticated: boolean;
  /** The route's own credential when it takes neither of the API's (the Pub/Sub push token). */
  security?: Record<string, string[]>[];
}

const COMMON_ERRORS: ErrorCode[] = ['REQ0004', 'AUTH0001', 'AUTH0002', 'AUTH0003', 'S0001', 'S0002'];

export const DOCUMENTED_ROUTES: RouteDoc[] = [
  {
    method: 'post',
    path: '/storekit2/purchases',
    summary: 'Register an Apple StoreKit 2 purchase and start its synchronization.',
    body: { name: 'AppleRegisterBody', schema: AppleRegisterBody },
    success: { status: 202, name: 'AcceptedResponse', schema: AcceptedResponse },
    errors: [...COMMON_ERRORS, 'AUTH0004', 'REQ0001', 'REQ0005', 'REQ0006', 'REQ0007', 'SK2C0100', 'SK2C0101', 'SK2C0004'],
    authenticated: true,
  },
  {
    method: 'post',
    path: '/storekit2/purchases/transfers',
    summary: 'Transfer an active Apple purchase to another customer (cleengCustomerId is the new owner).',
    body: { name: 'AppleTransferBody', schema: AppleTransferBody },
    success: { status: 202, name: 'AcceptedResponse', schema: AcceptedResponse },
    errors: [...COMMON_ERRORS, 'AUTH0004', 'REQ0001', 'REQ0005', 'REQ0006', 'SK2C0100', 'SK2C0103', 'SK2C0104', 'SK2C0005', 'SK2C0004'],
    authenticated: true,
  },
  {
    method: 'get',
    path: '/storekit2/purchases/synchronizations/{synchronizationId}',
    summary: 'Status of an Apple synchronization or transfer.',
    success: { status: 200, name: 'SynchronizationStatus', schema: SynchronizationStatusResponse },
    errors: [...COMMON_ERRORS, 'REQ0003', 'REQ0100'],
    pathParam: 'synchronizationId',
    authenticated: true,
  },
  {
    method: 'post',
    path: '/google-play/purchases',
    summary: 'Register a Google Play subscription purchase and start its synchronization.',
    body: { name: 'GoogleRegisterBody', schema: GoogleRegisterBody },
    success: { status: 202, name: 'AcceptedResponse', schema: AcceptedResponse },
    errors: [...COMMON_ERRORS, 'REQ0001', 'REQ0005', 'REQ0006', 'REQ0007', 'GPLAY0004', 'GPLAY0100', 'GPLAY0200', 'GPLAY0300'],
    authenticated: true,
  },
  {
    method: 'post',
    path: '/google-play/purchases/transfers',
    summary: 'Transfer an active Google Play subscription to another customer (no call to Google).',
    body: { name: 'GoogleTransferBody', schema: GoogleTransferBody },
    success: { status: 202, name: 'AcceptedResponse', schema: AcceptedResponse },
    errors: [...COMMON_ERRORS, 'REQ0001', 'REQ0005', 'REQ0006', 'GPLAY0004', 'GPLAY0100', 'GPLAY0200', 'GPLAY0300'],
    authenticated: true,
  },
  {
    method: 'get',
    path: '/google-play/purchases/synchronizations/{synchronizationId}',
    summary: 'Status of a Google Play synchronization or transfer.',
    success: { status: 200, name: 'SynchronizationStatus', schema: SynchronizationStatusResponse },
    errors: [...COMMON_ERRORS, 'REQ0003', 'REQ0100'],
    pathParam: 'synchronizationId',
    authenticated: true,
  },
  {
    method: 'get',
    path: '/customers/{cleengCustomerId}/entitlements',
    summary: 'What the customer may access now, and why: one entitlement per subscription, active decided at read time.',
    success: { status: 200, name: 'Entitlements', schema: EntitlementsResponse },
    errors: [...COMMON_ERRORS, 'REQ0003', 'REQ0101'],
    pathParam: 'cleengCustomerId',
    pathParamSchema: { type: 'string', pattern: '^[1-9][0-9]{0,9}$' },
    authenticated: true,
  },
  {
    method: 'post',
    path: '/storekit2/notifications/{publisherId}',
    summary:
      "App Store Server Notifications V2 (the URL set in App Store Connect). No credentials: the signedPayload is verified with Apple's library. Answers 200 once stored; processing re-reads the purchase from Apple.",
    body: { name: 'AppleNotificationBody', schema: AppleNotificationBody },
    success: { status: 200, name: 'NotificationAcknowledged', schema: NotificationAcknowledged },
    errors: ['REQ0001', 'REQ0005', 'REQ0006', 'NOTIF0001', 'S0001', 'S0002'],
    pathParam: 'publisherId',
    pathParamSchema: { type: 'string', pattern: '^[1-9][0-9]{0,9}$' },
    authenticated: false,
  },
  {
    method: 'post',
    path: '/google-play/notifications/{publisherId}',
    summary:
      "Google Play Real-time Developer Notifications, pushed by the publisher's authenticated Pub/Sub subscription. Authorization: Bearer a Google-signed OIDC ID token whose email is the publisher's push service account (verified) and whose aud is its configured audience, else this endpoint's URL; X-Publisher-Id is ignored. Answers 200 once stored (and to duplicates, test and ignored notifications); processing re-reads the purchase from Google.",
    body: { name: 'GooglePushBody', schema: GooglePushBody },
    success: { status: 200, name: 'NotificationAcknowledged', schema: NotificationAcknowledged },
    errors: ['REQ0001', 'REQ0006', 'AUTH0002', 'NOTIF0001', 'S0001', 'S0002'],
    pathParam: 'publisherId',
    pathParamSchema: { type: 'string', pattern: '^[1-9][0-9]{0,9}$' },
    authenticated: false,
    security: [{ googlePushToken: [] }],
  },
];

const HEADER_PARAMETERS = [
  { name: 'X-Publisher-Id', required: true, schema: { type: 'string', pattern: '^[1-9][0-9]{0,9}$' }, description: 'int32 > 0; must be the publisher of the credential.' },
  { name: 'Correlation-Id', required: false, schema: { type: 'string', minLength: 1, maxLength: 256 }, description: 'Echoed back. A UUID on a register becomes the synchronizationId and makes retries idempotent.' },
  ...['X-App-Version', 'X-Device-Id', 'X-Device-Type', 'X-User-Action'].map((name) => ({
    name,
    required: false,
    schema: { type: 'string', maxLength: 256 },
    description: 'Stored on the synchronization record for support and analytics.',
  })),
].map((parameter) => ({ in: 'header', ...parameter }));

/**
 * Every schema carrying `.meta({ id })` lands in zod's global registry; converting the registry
 * at once gives each its component and turns references between them into `$ref`s.
 */
function componentSchemas(): Record<string, unknown> {
  const { schemas } = z.toJSONSchema(z.globalRegistry, {
    uri: (id) => `#/components/schemas/${id}`,
    unrepresentable: 'any',
  }) as { schemas: Record<string, Record<string, unknown>> };
  for (const schema of Object.values(schemas)) {
    delete schema.$schema;
    delete schema.$id;
  }
  return schemas;
}

function errorResponses(codes: ErrorCode[]) {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of codes) {
    const status = ERROR_CODES[code].status;
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const responses: Record<string, unknown> = {};
  for (const [status, list] of [...byStatus.entries()].sort(([a], [b]) => a - b)) {
    responses[String(status)] = {
      description: list.map((code) => `${code}: ${ERROR_CODES[code].message}`).join(' | '),
      content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
    };
  }
  return responses;
}

export function buildOpenApiDocument(serverUrl?: string) {
  const schemas = componentSchemas();
  for (const required of [ErrorResponse, SyncResultDetail, SyncResultWebhookBody, EntitlementChangedDetail, EntitlementChangedWebhookBody]) {
    const id = z.globalRegistry.get(required)?.id;
    if (!id || !(id in schemas)) throw new Error('a documented schema has no component');
  }
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of DOCUMENTED_ROUTES) {
    const parameters = [
      ...(route.authenticated ? HEADER_PARAMETERS : []),
      ...(route.pathParam
        ? [{ in: 'path', name: route.pathParam, required: true, schema: route.pathParamSchema ?? { type: 'string', format: 'uuid' } }]
        : []),
    ];
    paths[route.path] = {
      ...paths[route.path],
      [route.method]: {
        summary: route.summary,
        parameters,
        security: route.security ?? (route.authenticated ? [{ customerJwt: [] }, { publisherToken: [] }] : []),
        ...(route.body
          ? {
              requestBody: {
                required: true,
                content: { 'application/json': { schema: { $ref: `#/components/schemas/${route.body.name}` } } },
              },
            }
          : {}),
        responses: {
          [String(route.success.status)]: {
            description: route.success.name,
            content: { 'application/json': { schema: { $ref: `#/components/schemas/${route.success.name}` } } },
          },
          ...errorResponses(route.errors),
        },
      },
    };
  }
  paths['/openapi.json'] = {
    get: { summary: 'This document.', responses: { '200': { description: 'OpenAPI 3.1 document' } } },
  };
  return {
    openapi: '3.1.0',
    info: {
      title: 'iap-sync',
      version: '1',
      description:
        'Asynchronous, pollable, idempotent synchronization of App Store and Google Play purchases into entitlements. ' +
        'Every finalized synchronization is published as the EventBridge event and webhook `inappPurchaseSyncResult` (schema InappPurchaseSyncResultDetail / InappPurchaseSyncResultWebhook); ' +
        'every change of a customer\'s entitlement, whatever caused it, as `inappEntitlementChanged` (InappEntitlementChangedDetail / InappEntitlementChangedWebhook).',
    },
    ...(serverUrl ? { servers: [{ url: serverUrl }] } : {}),
    paths,
    components: {
      schemas,
      securitySchemes: {
        customerJwt: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
        publisherToken: { type: 'apiKey', in: 'header', name: 'X-Publisher-Token' },
        googlePushToken: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description: "The OIDC ID token Google signs for an authenticated Pub/Sub push subscription (the store notification routes' only credential).",
        },
      },
    },
  };
}
