import { EXPRESS_ENDED_AFTER_SECONDS } from '../lambdas/lifecycle';
import { SYNCHRONIZATION_KEY } from '../lambdas/platform/dynamodb-table';
import type { SecretScope } from './secret-scopes';
export { LOCK_LEASE_SECONDS, WORKFLOW_TIMEOUT_SECONDS } from '../lambdas/purchases';

/**
 * The Lambda functions and HTTP routes of iap-sync, defined once: the CDK stack creates one
 * function per entry and the local runtime calls the same handler modules in-process.
 */
export interface ApiFunction {
  /** Construct id (PascalCase) and local name. */
  id: string;
  /** Handler module, relative to the project root; it exports `handler`. */
  entry: string;
  /** HTTP API route keys (`METHOD /path/{param}`). */
  routes: string[];
  /**
   * What the function may touch; the CDK stack grants exactly this. `secrets`: the publishers' secrets
   * it may read, by scope (lib/secret-scopes.ts); the API functions read customers' JWT secrets only.
   */
  access: { table: 'none' | 'read' | 'readwrite'; startsWorkflow: boolean; secrets: readonly SecretScope[] };
  /** Verifies data Apple signed: gets the trusted Apple roots (APPLE_ROOT_CERTIFICATES). */
  verifiesAppleSignatures?: boolean;
}

export interface WorkflowFunction {
  id: string;
  entry: string;
  /** The `${…}` placeholder of the ASL that receives this function's ARN. */
  substitution: string;
  /**
   * Lambda timeout. A verify function's Task state times out first (45 s, so `States.Timeout` takes the
   * retry path) and the function's own 40 s deadline before that; the others are below their Task's.
   */
  timeoutSeconds: number;
  /** Publishers' secrets it reads, by scope: store credentials (App Store Connect key, Google service account). */
  secrets: readonly SecretScope[];
}

export const API_FUNCTIONS: ApiFunction[] = [
  {
    id: 'RegisterApplePurchase',
    entry: 'lambdas/purchases/handlers/register-apple-purchase.ts',
    routes: ['POST /storekit2/purchases'],
    access: { table: 'readwrite', startsWorkflow: true, secrets: ['jwt'] },
    // Proof of possession: the device's signedTransactionInfo is verified against Apple's roots.
    verifiesAppleSignatures: true,
  },
  {
    id: 'TransferApplePurchase',
    entry: 'lambdas/purchases/handlers/transfer-apple-purchase.ts',
    routes: ['POST /storekit2/purchases/transfers'],
    access: { table: 'readwrite', startsWorkflow: true, secrets: ['jwt'] },
    verifiesAppleSignatures: true,
  },
  {
    id: 'RegisterGooglePurchase',
    entry: 'lambdas/purchases/handlers/register-google-purchase.ts',
    routes: ['POST /google-play/purchases'],
    access: { table: 'readwrite', startsWorkflow: true, secrets: ['jwt'] },
  },
  {
    id: 'TransferGooglePurchase',
    entry: 'lambdas/purchases/handlers/transfer-google-purchase.ts',
    routes: ['POST /google-play/purchases/transfers'],
    access: { table: 'readwrite', startsWorkflow: true, secrets: ['jwt'] },
  },
  {
    id: 'GetSynchronization',
    entry: 'lambdas/purchases/handlers/get-synchronization.ts',
    routes: [
      'GET /storekit2/purchases/synchronizations/{synchronizationId}',
      'GET /google-play/purchases/synchronizations/{synchronizationId}',
    ],
    access: { table: 'read', startsWorkflow: false, secrets: ['jwt'] },
  },
  {
    id: 'GetEntitlements',
    entry: 'lambdas/entitlements/handlers/get-entitlements.ts',
    routes: ['GET /customers/{cleengCustomerId}/entitlements'],
    access: { table: 'read', startsWorkflow: false, secrets: ['jwt'] },
  },
  {
    // App Store Server Notifications V2: the signed payload is the credential, so no secret is read.
    id: 'ReceiveAppleNotification',
    entry: 'lambdas/lifecycle/handlers/receive-apple-notification.ts',
    routes: ['POST /storekit2/notifications/{publisherId}'],
    access: { table: 'readwrite', startsWorkflow: true, secrets: [] },
    verifiesAppleSignatures: true,
  },
  {
    // Google Play Real-time Developer Notifications by Pub/Sub push: the push's Google-signed OIDC
    // token is the credential (checked against Google's public keys), so no secret is read.
    id: 'ReceiveGoogleNotification',
    entry: 'lambdas/lifecycle/handlers/receive-google-notification.ts',
    routes: ['POST /google-play/notifications/{publisherId}'],
    access: { table: 'readwrite', startsWorkflow: true, secrets: [] },
  },
  {
    id: 'GetOpenApi',
    entry: 'lambdas/openapi/get-openapi.ts',
    routes: ['GET /openapi.json'],
    access: { table: 'none', startsWorkflow: false, secrets: [] },
  },
];

export const WORKFLOW_FUNCTIONS: WorkflowFunction[] = [
  // One verify function per store (the ASL's VerifyStore Choice picks by the execution's `store`): each
  // bundle carries one store's library and each role reads one store's credentials.
  {
    id: 'VerifyApplePurchase',
    entry: 'lambdas/purchases/handlers/verify-apple-purchase.ts',
    substitution: 'VerifyApplePurchaseFunctionArn',
    timeoutSeconds: 50,
    secrets: ['apple'],
  },
  {
    id: 'VerifyGooglePurchase',
    entry: 'lambdas/purchases/handlers/verify-google-purchase.ts',
    substitution: 'VerifyGooglePurchaseFunctionArn',
    timeoutSeconds: 50,
    secrets: ['google'],
  },
  { id: 'MarkRetrying', entry: 'lambdas/purchases/handlers/mark-synchronization-retrying.ts', substitution: 'MarkRetryingFunctionArn', timeoutSeconds: 15, secrets: [] },
  {
    id: 'AcknowledgePurchase',
    entry: 'lambdas/purchases/handlers/acknowledge-purchase.ts',
    substitution: 'AcknowledgePurchaseFunctionArn',
    timeoutSeconds: 25,
    // Acknowledges Google purchases only.
    secrets: ['google'],
  },
  {
    id: 'FinalizeSynchronization',
    entry: 'lambdas/purchases/handlers/finalize-synchronization.ts',
    substitution: 'FinalizeSynchronizationFunctionArn',
    timeoutSeconds: 25,
    secrets: [],
  },
];

/** The webhook delivery function, fed by the SQS queue behind the bus rule. */
export const WEBHOOK_FUNCTION = {
  id: 'DeliverWebhooks',
  entry: 'lambdas/webhooks/handlers/deliver-webhooks.ts',
  /** Several 15 s attempts of a batch run concurrently; SQS visibility is six times this. */
  timeoutSeconds: 60,
  /** Endpoints' signing secrets. */
  secrets: ['webhook'],
} as const;

/**
 * The recovery sweeper: scheduled on AWS, called at start-up and every minute by `npm start`.
 * EXPRESS executions last at most 5 minutes, so a synchronization open longer than that (plus a
 * minute) has lost its execution.
 */
export const SWEEPER_FUNCTION = {
  id: 'RecoverSynchronizations',
  entry: 'lambdas/lifecycle/handlers/recover-synchronizations.ts',
  timeoutSeconds: 300,
  /** EXPRESS: every minute, since it also starts the next store attempt of parked synchronizations. */
  scheduleMinutes: { STANDARD: 5, EXPRESS: 1 },
  expressEndedAfterSeconds: EXPRESS_ENDED_AFTER_SECONDS,
} as const;

/** The scheduled reconciliation: scheduled on AWS; `npm start` runs it at start-up and every localIntervalMinutes. */
export const RECONCILE_FUNCTION = {
  id: 'ReconcilePurchases',
  entry: 'lambdas/lifecycle/handlers/reconcile-purchases.ts',
  /** The handler stops starting work 30 s before this; the cursor keeps the rest for the next run. */
  timeoutSeconds: 600,
  scheduleMinutes: 60,
  /** App Store Connect keys (Get Notification History) and Google service accounts (due Google purchases). */
  secrets: ['apple', 'google'],
  localIntervalMinutes: 5,
} as const;

/**
 * Memory of each function, MB (Lambda gives CPU in proportion). 256 MB by default: the API functions
 * and the workflow's Tasks mostly wait on a store, DynamoDB or EventBridge, and cold-start CPU keeps
 * anything below 256 from paying off. The reconciliation keeps 512: an hourly batch that decodes many
 * signed notifications. The cost model (bench/cost-model.ts) bills each function at this size.
 */
export const DEFAULT_MEMORY_MB = 256;
const MEMORY_MB: Readonly<Record<string, number>> = { [RECONCILE_FUNCTION.id]: 512 };

/** The memory size of a catalog function, by id. */
export function memoryMbOf(functionId: string): number {
  return MEMORY_MB[functionId] ?? DEFAULT_MEMORY_MB;
}

/** Placeholders of the ASL that are not function ARNs. */
export const WORKFLOW_VALUE_SUBSTITUTIONS = [
  'Partition',
  'TableName',
  'SynchronizationKeyPrefix',
  'SynchronizationSortKey',
] as const;

/**
 * The ASL's non-ARN placeholders, from the same definitions the code uses: the synchronization
 * item's key (MarkPublished writes it directly) from the table's key builder. The events' source and
 * detail-types come from the registry through the finalize's `entries`. `partition` goes into the
 * service integrations' ARNs (`arn:${Partition}:states:::…`): the stack's own partition on AWS
 * (aws-cn, aws-us-gov), `aws` for the local runtime and tests.
 */
export function workflowValueSubstitutions(names: { tableName: string; partition?: string }): Record<(typeof WORKFLOW_VALUE_SUBSTITUTIONS)[number], string> {
  return {
    Partition: names.partition ?? 'aws',
    TableName: names.tableName,
    SynchronizationKeyPrefix: SYNCHRONIZATION_KEY.partitionPrefix,
    SynchronizationSortKey: SYNCHRONIZATION_KEY.sortKey,
  };
}

export const WORKFLOW_DEFINITION_FILE = 'statemachines/purchase-sync.asl.json';

/** Replaces `${Name}` placeholders like CloudFormation's DefinitionSubstitutions does. */
export function substituteDefinition(definition: string, values: Record<string, string>): string {
  return definition.replace(/\$\{([A-Za-z0-9]+)\}/g, (whole, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`No substitution for \${${name}} in the workflow definition`);
    return value;
  });
}
