import asl from '../../statemachines/purchase-sync.asl.json';

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
  /** What the function may touch; the CDK stack grants exactly this. */
  access: { table: 'none' | 'read' | 'readwrite'; startsWorkflow: boolean; readsSecrets: boolean };
}

export interface WorkflowFunction {
  id: string;
  entry: string;
  /** The `${…}` placeholder of the ASL that receives this function's ARN. */
  substitution: string;
  /** Lambda timeout; below the Task state's TimeoutSeconds. */
  timeoutSeconds: number;
  /** Reads publishers' store credentials (App Store Connect key, Google service account). */
  readsSecrets: boolean;
}

export const API_FUNCTIONS: ApiFunction[] = [
  {
    id: 'RegisterApplePurchase',
    entry: 'lambdas/handlers/register-apple-purchase.ts',
    routes: ['POST /storekit2/purchases'],
    access: { table: 'readwrite', startsWorkflow: true, readsSecrets: true },
  },
  {
    id: 'TransferApplePurchase',
    entry: 'lambdas/handlers/transfer-apple-purchase.ts',
    routes: ['POST /storekit2/purchases/transfers'],
    access: { table: 'readwrite', startsWorkflow: true, readsSecrets: true },
  },
  {
    id: 'RegisterGooglePurchase',
    entry: 'lambdas/handlers/register-google-purchase.ts',
    routes: ['POST /google-play/purchases'],
    access: { table: 'readwrite', startsWorkflow: true, readsSecrets: true },
  },
  {
    id: 'TransferGooglePurchase',
    entry: 'lambdas/handlers/transfer-google-purchase.ts',
    routes: ['POST /google-play/purchases/transfers'],
    access: { table: 'readwrite', startsWorkflow: true, readsSecrets: true },
  },
  {
    id: 'GetSynchronization',
    entry: 'lambdas/handlers/get-synchronization.ts',
    routes: [
      'GET /storekit2/purchases/synchronizations/{synchronizationId}',
      'GET /google-play/purchases/synchronizations/{synchronizationId}',
    ],
    access: { table: 'read', startsWorkflow: false, readsSecrets: true },
  },
  {
    id: 'GetOpenApi',
    entry: 'lambdas/handlers/get-openapi.ts',
    routes: ['GET /openapi.json'],
    access: { table: 'none', startsWorkflow: false, readsSecrets: false },
  },
];

export const WORKFLOW_FUNCTIONS: WorkflowFunction[] = [
  { id: 'VerifyPurchase', entry: 'lambdas/handlers/verify-purchase.ts', substitution: 'VerifyPurchaseFunctionArn', timeoutSeconds: 50, readsSecrets: true },
  { id: 'MarkRetrying', entry: 'lambdas/handlers/mark-synchronization-retrying.ts', substitution: 'MarkRetryingFunctionArn', timeoutSeconds: 15, readsSecrets: false },
  {
    id: 'AcknowledgePurchase',
    entry: 'lambdas/handlers/acknowledge-purchase.ts',
    substitution: 'AcknowledgePurchaseFunctionArn',
    timeoutSeconds: 25,
    readsSecrets: true,
  },
  {
    id: 'FinalizeSynchronization',
    entry: 'lambdas/handlers/finalize-synchronization.ts',
    substitution: 'FinalizeSynchronizationFunctionArn',
    timeoutSeconds: 25,
    readsSecrets: false,
  },
];

/** The webhook delivery function, fed by the SQS queue behind the bus rule. */
export const WEBHOOK_FUNCTION = {
  id: 'DeliverWebhooks',
  entry: 'lambdas/handlers/deliver-webhooks.ts',
  /** Several 15 s attempts of a batch run concurrently; SQS visibility is six times this. */
  timeoutSeconds: 60,
} as const;

/**
 * The recovery sweeper: scheduled on AWS, called at start-up and every minute by `npm start`.
 * EXPRESS executions last at most 5 minutes, so a synchronization open longer than that (plus a
 * minute) has lost its execution.
 */
export const SWEEPER_FUNCTION = {
  id: 'RecoverSynchronizations',
  entry: 'lambdas/handlers/recover-synchronizations.ts',
  timeoutSeconds: 300,
  /** EXPRESS: every minute, since it also starts the next store attempt of parked synchronizations. */
  scheduleMinutes: { STANDARD: 5, EXPRESS: 1 },
  expressEndedAfterSeconds: 360,
} as const;

/** Placeholders of the ASL that are not function ARNs. */
export const WORKFLOW_VALUE_SUBSTITUTIONS = ['TableName', 'EventBusName', 'EventSource', 'EventDetailType'] as const;

export const WORKFLOW_DEFINITION_FILE = 'statemachines/purchase-sync.asl.json';

/** The workflow's own timeout, read from the ASL so the lock lease can never be shorter. */
export const WORKFLOW_TIMEOUT_SECONDS: number = asl.TimeoutSeconds;

/** Lease of a purchase lock: the workflow timeout plus a margin for start-up and finalize retries. */
export const LOCK_LEASE_SECONDS = WORKFLOW_TIMEOUT_SECONDS + 600;

/** Replaces `${Name}` placeholders like CloudFormation's DefinitionSubstitutions does. */
export function substituteDefinition(definition: string, values: Record<string, string>): string {
  return definition.replace(/\$\{([A-Za-z0-9]+)\}/g, (whole, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`No substitution for \${${name}} in the workflow definition`);
    return value;
  });
}
