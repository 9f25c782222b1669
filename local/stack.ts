import './polyfills';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join, resolve } from 'node:path';
import { DynamoDBClient, UpdateItemCommand, type UpdateItemCommandInput } from '@aws-sdk/client-dynamodb';
import { DynamoDbPublisherRepository } from '../lambdas/tenants/adapters/dynamodb-publisher-repository';
import { DynamoDbSynchronizationRepository } from '../lambdas/purchases/adapters/dynamodb-synchronization-repository';
import { createDocumentClient } from '../lambdas/platform/dynamodb-client';
import { WEBHOOK_EVENT_PATTERN } from '../lambdas/events/schemas';
import {
  API_FUNCTIONS,
  WORKFLOW_DEFINITION_FILE,
  WORKFLOW_FUNCTIONS,
  substituteDefinition,
  workflowValueSubstitutions,
  RECONCILE_FUNCTION,
  SWEEPER_FUNCTION,
} from '../lib/catalog';
import { compileRoute, dispatchApi, sendError, type LocalRoute } from './api-gateway';
import { LOCAL_CREDENTIALS, LOCAL_REGION, LocalStartError, startDynamoDbLocal, type DynamoDbLocal } from './dynamodb-local';
import { LocalEventBus, readEventLog, type EventEnvelope, type LocalRule } from './event-bus';
import { lambdaContext, type LambdaEntry } from './lambda-context';
import { APPLE_KEY_FILE, DEMO, seedDemo } from './seed';
import { createAppleSimulator } from './simulator/apple-simulator';
import { FaultInjector, handleFaultRoutes } from './simulator/faults';
import { createLocalWebhookDelivery, handleLocalWebhookRoutes, type LocalWebhookDelivery } from './webhook-queue';
import { createLogger } from '../lambdas/platform/logger';
import type { ReconcileReport } from '../lambdas/lifecycle';
import { createNotificationOutbox, type NotificationOutbox } from './simulator/notifications';
import { createGoogleSimulator, GOOGLE_SERVICE_ACCOUNT_FILE, type GoogleSimulator } from './simulator/google-simulator';
import { readBody, RequestAbortedError } from './simulator/http-json';
import { isLocalOnlyPath, isLoopbackHost, refuseLocalOnlyRequest } from './loopback-guard';
import { settlePublishedBeforeRestart, startLocalSweeper, type LocalSweeper } from './recover';
import { AwsJsonError, LocalStepFunctions, type TaskImplementation } from './step-functions';

export const PROJECT_ROOT = resolve(__dirname, '..');
export const LOCAL_TABLE_NAME = 'iap-sync-local';
export const LOCAL_BUS_NAME = 'iap-sync-local';
export const LOCAL_STATE_MACHINE_ARN = `arn:aws:states:${LOCAL_REGION}:000000000000:stateMachine:iap-sync-local-purchase-sync`;
const PUT_EVENTS_RESOURCE = 'arn:aws:states:::events:putEvents';
const UPDATE_ITEM_RESOURCE = 'arn:aws:states:::dynamodb:updateItem';
/** Requests larger than this are refused before a handler sees them (handlers refuse > 16 KiB anyway). */
const MAX_REQUEST_BYTES = 1024 * 1024;

export interface LocalStackOptions {
  /** 0 picks a free port (tests). */
  port: number;
  dataDir: string;
  inMemory: boolean;
  host?: string;
  logLevel?: 'debug' | 'info' | 'warn' | 'error' | 'silent';
  /** Store retry budget (defaults as deployed). */
  retry?: { maxAttempts: number; baseSeconds: number; maxWaitSeconds: number };
  /** Tests: shorten Wait states and Task retry intervals to this many ms. */
  fastWaitsMs?: number;
  /** One line per component as it starts. */
  print?: (line: string) => void;
  /** One line per request the servers drop or refuse as malformed (an aborted upload, a bad URL); default stderr. */
  warn?: (line: string) => void;
  extraRules?: LocalRule[];
  /** Multiplies the webhook retry schedule (tests: 0.0001); default 1, the contract's 5 s … 10 h. */
  webhookScheduleScale?: number;
  /**
   * Run the workflow with EXPRESS semantics (default STANDARD): store retries park the synchronization
   * and the recovery sweeper starts each next attempt, as on an EXPRESS stack. The local engine has
   * no 5-minute limit, so this rehearses the parking, not the limit.
   */
  workflowType?: 'STANDARD' | 'EXPRESS';
  /** The recovery sweeper's period (default one minute) and grace period (default as deployed, 180 s). */
  recovery?: { intervalMs?: number; graceSeconds?: number };
  /** The reconciliation's period (default RECONCILE_FUNCTION.localIntervalMinutes; 0: at start-up only). */
  reconcile?: { intervalMs?: number };
}

export interface LocalJson {
  apiUrl: string;
  simulatorUrl: string;
  publisherId: number;
  publisherToken: string;
  customerIds: number[];
  customerJwts: Record<string, string>;
  apple: { bundleId: string; products: Record<string, string> };
  google: { packageName: string; products: Record<string, string> };
}

export interface LocalStack {
  url: string;
  port: number;
  /**
   * The Step Functions and EventBridge stand-ins (AWS JSON protocol, by X-Amz-Target): a listener of
   * their own on 127.0.0.1 and an ephemeral port, for the stack's own SDK clients, never the API port.
   */
  awsUrl: string;
  localJson: LocalJson;
  localJsonPath: string;
  bus: LocalEventBus;
  stepFunctions: LocalStepFunctions;
  faults: FaultInjector;
  /** The store simulators' notification outbox (what they sent, where, and its answer). */
  outbox: NotificationOutbox;
  /** The Play simulator's push token signer (tests forge pushes with it). */
  googlePush: Pick<GoogleSimulator, 'signPushToken' | 'pushServiceAccountEmail'>;
  dynamodb: DynamoDbLocal;
  webhooks: LocalWebhookDelivery;
  stop(): Promise<void>;
}

function writeIfChanged(path: string, content: string): void {
  if (!existsSync(path) || readFileSync(path, 'utf8') !== content) writeFileSync(path, content, { mode: 0o600 });
}

function loadEntry(entry: string): LambdaEntry {
  // The same handler module the CDK stack bundles, called in-process.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mod = require(join(PROJECT_ROOT, entry)) as { handler?: LambdaEntry };
  if (typeof mod.handler !== 'function') throw new Error(`${entry} exports no handler`);
  return mod.handler;
}

/** One request line for the console: method and path only (a query may carry a purchase token), printable, bounded. */
function describeRequest(req: IncomingMessage): string {
  const target = (req.url ?? '').split('?')[0] ?? '';
  return `${req.method ?? '?'} ${JSON.stringify(target.length > 120 ? `${target.slice(0, 120)}…` : target)}`;
}

function sendAwsJson(res: ServerResponse, status: number, payload: unknown): void {
  const body = Buffer.from(JSON.stringify(payload));
  res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0', 'content-length': body.length });
  res.end(body);
}

/** The AWS JSON-protocol stand-ins, routed by X-Amz-Target as the SDK clients send it. */
async function serveAwsJson(
  req: IncomingMessage,
  res: ServerResponse,
  services: Record<'AWSStepFunctions' | 'AWSEvents', (op: string, body: Record<string, unknown>) => Promise<unknown>>,
): Promise<void> {
  // A page of the developer's browser whose name was rebound to 127.0.0.1 still sends its own Host.
  if (!isLoopbackHost(req.headers.host)) return sendAwsJson(res, 403, { __type: 'AccessDeniedException', message: 'Only loopback callers.' });
  const [service = '', operation = ''] = String(req.headers['x-amz-target'] ?? '').split('.');
  const call = req.method === 'POST' && (service === 'AWSStepFunctions' || service === 'AWSEvents') ? services[service] : undefined;
  const raw = await readBody(req, MAX_REQUEST_BYTES);
  if (!call) return sendAwsJson(res, 400, { __type: 'UnknownOperationException', message: 'Unknown X-Amz-Target.' });
  if (raw === undefined) return sendAwsJson(res, 413, { __type: 'SerializationException', message: 'Request too large.' });
  let status = 200;
  let payload: unknown;
  try {
    payload = await call(operation, raw.length ? (JSON.parse(raw.toString('utf8')) as Record<string, unknown>) : {});
  } catch (error) {
    const known = error instanceof AwsJsonError;
    status = known ? error.statusCode : 500;
    payload = { __type: known ? error.type : 'InternalFailure', message: (error as Error).message };
  }
  sendAwsJson(res, status, payload);
}

/** Listens on `host:port`; the port actually bound (port 0 picks one). */
async function listen(server: Server, port: number, host: string, refused: (error: NodeJS.ErrnoException) => Error): Promise<number> {
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => reject(refused(error)));
    server.listen(port, host, () => resolveListen());
  });
  const address = server.address();
  return typeof address === 'object' && address ? address.port : port;
}

/**
 * Answers an error a request handler threw: an aborted upload is dropped with one line (nobody is
 * left to answer), anything else is a 500 with its stack trace on the console.
 */
function failRequest(req: IncomingMessage, res: ServerResponse, error: unknown, warn: (line: string) => void, fallback: () => void): void {
  if (error instanceof RequestAbortedError) {
    warn(`local server: ${describeRequest(req)} dropped: the client closed the connection before its body ended`);
    res.destroy();
    return;
  }
  process.stderr.write(`local server error: ${(error as Error).stack ?? String(error)}\n`);
  if (!res.headersSent) fallback();
  else res.end();
}

/**
 * Starts the whole pipeline on localhost: DynamoDB Local, the store simulator, Step Functions and
 * EventBridge stand-ins and the HTTP API, all calling the deployed handler modules in-process.
 */
export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const print = options.print ?? (() => undefined);
  const dataDir = resolve(options.dataDir);
  try {
    mkdirSync(join(dataDir, 'secrets'), { recursive: true });
    writeFileSync(join(dataDir, '.write-test'), '');
  } catch {
    throw new LocalStartError(`The data dir ${dataDir} is not writable.`);
  }
  const secretsDir = join(dataDir, 'secrets');

  const warn = options.warn ?? ((line: string) => void process.stderr.write(`${line}\n`));
  const server: Server = createServer();
  const port = await listen(server, options.port, options.host ?? '127.0.0.1', (error) =>
    error.code === 'EADDRINUSE'
      ? new LocalStartError(`Port ${options.port} is already in use: choose another with --port or PORT.`)
      : new LocalStartError(`Cannot listen on port ${options.port}: ${error.message}`),
  );
  const url = `http://127.0.0.1:${port}`;
  // The Step Functions and EventBridge stand-ins are not API routes: on the API port anyone who can
  // reach it could publish events the webhook sender then signs. Their own listener, on loopback
  // only and a port chosen at each start, is known to this process and, through runtime.json, the CLI.
  const awsServer: Server = createServer();
  let dynamodb: DynamoDbLocal | undefined;
  let stepFunctions: LocalStepFunctions | undefined;
  let sweeper: LocalSweeper | undefined;
  let reconcileTimer: NodeJS.Timeout | undefined;
  let reconciling: Promise<void> = Promise.resolve();
  const startedAt = new Date();
  const eventsLogFile = join(dataDir, 'events.jsonl');
  try {
    const awsPort = await listen(awsServer, 0, '127.0.0.1', (error) => new LocalStartError(`Cannot listen on 127.0.0.1 for the AWS stand-ins: ${error.message}`));
    const awsUrl = `http://127.0.0.1:${awsPort}`;
    dynamodb = await startDynamoDbLocal({ tableName: LOCAL_TABLE_NAME, ...(options.inMemory ? {} : { dataDir: join(dataDir, 'dynamodb') }) });
    print(`dynamodb     DynamoDB Local ${options.inMemory ? '(in memory)' : `(data in ${join(dataDir, 'dynamodb')})`} at ${dynamodb.endpoint}`);

    const faults = new FaultInjector();
    const outbox = await createNotificationOutbox({ dataDir, inMemory: options.inMemory, warn });
    const apple = await createAppleSimulator({ dataDir, inMemory: options.inMemory, defaultBundleId: DEMO.bundleId, outbox }, faults);
    print(`simulator    App Store Server API simulator at ${url}/__simulator/apple`);
    // As App Store Connect's notification URL would (Version 2): the demo publisher's notification route.
    outbox.setTarget('apple', `${url}/storekit2/notifications/${DEMO.publisherId}`);
    print(`simulator    App Store Server Notifications V2 go to ${url}/storekit2/notifications/${DEMO.publisherId}`);
    const google = await createGoogleSimulator({ dataDir, inMemory: options.inMemory, defaultPackageName: DEMO.packageName, outbox }, faults);
    print(`simulator    Play Developer API simulator at ${url}/__simulator/google`);
    // As the publisher's Pub/Sub push subscription would (RTDN topic): the demo publisher's push route.
    outbox.setTarget('google', `${url}/google-play/notifications/${DEMO.publisherId}`);
    print(`simulator    Real-time Developer Notifications are pushed to ${url}/google-play/notifications/${DEMO.publisherId}`);
    // The demo publisher's store credentials are the simulators' (an in-memory run makes new ones,
    // so the copies under secrets/ are rewritten whenever they differ).
    writeIfChanged(join(secretsDir, APPLE_KEY_FILE), apple.apiKey.privateKeyPem);
    writeIfChanged(join(secretsDir, GOOGLE_SERVICE_ACCOUNT_FILE), google.serviceAccountJson);

    // Configuration of the handlers: only endpoints, base URLs and trusted roots differ from AWS.
    Object.assign(process.env, {
      AWS_REGION: LOCAL_REGION,
      AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
      AWS_ENDPOINT_URL_DYNAMODB: dynamodb.endpoint,
      AWS_ENDPOINT_URL_SFN: awsUrl,
      AWS_ENDPOINT_URL_EVENTBRIDGE: awsUrl,
      TABLE_NAME: LOCAL_TABLE_NAME,
      STATE_MACHINE_ARN: LOCAL_STATE_MACHINE_ARN,
      EVENT_BUS_NAME: LOCAL_BUS_NAME,
      WORKFLOW_TYPE: options.workflowType ?? 'STANDARD',
      ...(options.recovery?.graceSeconds !== undefined ? { RECOVERY_GRACE_SECONDS: String(options.recovery.graceSeconds) } : {}),
      APPLE_API_BASE_URL_PRODUCTION: `${url}/__simulator/apple/production`,
      APPLE_API_BASE_URL_SANDBOX: `${url}/__simulator/apple/sandbox`,
      APPLE_ROOT_CERTIFICATES: apple.rootCertificateDer.toString('base64'),
      APPLE_ONLINE_CHECKS: 'false',
      GOOGLE_API_ROOT_URL: google.apiRootUrl(url),
      GOOGLE_OAUTH_TOKEN_URL: google.tokenUrl(url),
      // The simulator signs the pushes' OIDC tokens in place of Google.
      GOOGLE_PUSH_JWKS_URL: google.jwksUrl(url),
      LOCAL_SECRETS_DIR: secretsDir,
      LOG_LEVEL: options.logLevel ?? 'info',
      ...(options.retry
        ? {
            RETRY_MAX_ATTEMPTS: String(options.retry.maxAttempts),
            RETRY_BASE_SECONDS: String(options.retry.baseSeconds),
            RETRY_MAX_WAIT_SECONDS: String(options.retry.maxWaitSeconds),
          }
        : {}),
    });

    // Webhook delivery: the same rule pattern and delivery handler as the deployed stack, fed by an in-process queue.
    const webhooks = createLocalWebhookDelivery({
      db: createDocumentClient(dynamodb.client),
      tableName: LOCAL_TABLE_NAME,
      secretsDir,
      ...(options.webhookScheduleScale !== undefined ? { scale: options.webhookScheduleScale } : {}),
      ...(options.inMemory ? {} : { deadLetterFile: join(dataDir, 'webhook-dead-letters.json') }),
      logger: createLogger('deliver-webhooks', options.logLevel ?? 'info'),
    });
    print(`webhooks     delivery queue in-process (retry schedule × ${options.webhookScheduleScale ?? 1})`);
    const busRules: LocalRule[] = [webhooks.rule, ...(options.extraRules ?? [])];
    const bus = new LocalEventBus({
      busName: LOCAL_BUS_NAME,
      rules: busRules,
      ...(options.inMemory ? {} : { logFile: eventsLogFile }),
      onEvent: (event: EventEnvelope) =>
        print(
          event['detail-type'] === 'inappEntitlementChanged'
            ? `event        inappEntitlementChanged customer ${String(event.detail.cleengCustomerId)} ${String(event.detail.reason)} active=${String(event.detail.active)}`
            : `event        ${event['detail-type']} ${String(event.detail.synchronizationId)} ${String(event.detail.result)}`,
        ),
    });
    print(`eventbridge  bus ${LOCAL_BUS_NAME} (webhook rule pattern ${JSON.stringify(WEBHOOK_EVENT_PATTERN)})`);

    // Built on first use like a handler's client (AWS_ENDPOINT_URL_DYNAMODB), so the bench's request counter sees it too.
    let taskClient: DynamoDBClient | undefined;
    const substitutions: Record<string, string> = workflowValueSubstitutions({ tableName: LOCAL_TABLE_NAME });
    const tasks: Record<string, TaskImplementation> = {};
    for (const fn of WORKFLOW_FUNCTIONS) {
      const arn = `arn:aws:lambda:${LOCAL_REGION}:000000000000:function:iap-sync-local-${fn.id}`;
      substitutions[fn.substitution] = arn;
      const handler = loadEntry(fn.entry);
      tasks[arn] = (input) => handler(input, lambdaContext(fn.id));
    }
    tasks[PUT_EVENTS_RESOURCE] = async (input, execution) => {
      // The optimized integration: Detail objects are serialized, the execution is added to Resources,
      // and a failed entry fails the task with EventBridge.FailedEntry. Step Functions calls EventBridge
      // itself (no SDK client of ours is involved), so the entries go to the bus in-process: through an
      // SDK client and the stand-ins' HTTP listener they cost 1.1-2.3 ms of this process's CPU per publish,
      // in-process 0.01-0.05 ms, and under load that CPU is what every synchronization waits for.
      const entries = ((input as { Entries?: Record<string, unknown>[] }).Entries ?? []).map((entry) => ({
        Source: String(entry.Source),
        DetailType: String(entry.DetailType),
        EventBusName: String(entry.EventBusName),
        Detail: typeof entry.Detail === 'string' ? entry.Detail : JSON.stringify(entry.Detail),
        Resources: [execution.executionArn, execution.stateMachineArn],
      }));
      const out = await bus.putEvents(entries);
      if (out.FailedEntryCount > 0) {
        const error = new Error(JSON.stringify(out.Entries));
        error.name = 'EventBridge.FailedEntry';
        throw error;
      }
      return { Entries: out.Entries, FailedEntryCount: out.FailedEntryCount };
    };
    tasks[UPDATE_ITEM_RESOURCE] = async (input) => {
      // The optimized integration: the Parameters are UpdateItem's own (DynamoDB JSON), errors are
      // prefixed `DynamoDB.` for Retry/Catch.
      try {
        taskClient ??= new DynamoDBClient({});
        return await taskClient.send(new UpdateItemCommand(input as UpdateItemCommandInput));
      } catch (error) {
        const failure = new Error((error as Error).message);
        failure.name = `DynamoDB.${(error as Error).name}`;
        throw failure;
      }
    };
    const definition = substituteDefinition(readFileSync(join(PROJECT_ROOT, WORKFLOW_DEFINITION_FILE), 'utf8'), substitutions);
    const sfn = new LocalStepFunctions({
      definition,
      stateMachineArn: LOCAL_STATE_MACHINE_ARN,
      tasks,
      ...(options.fastWaitsMs !== undefined ? { waitOverrideMs: options.fastWaitsMs, retryOverrideMs: options.fastWaitsMs } : {}),
    });
    stepFunctions = sfn;
    print(`stepfunctions ${WORKFLOW_DEFINITION_FILE} (${WORKFLOW_FUNCTIONS.length} task functions)`);
    awsServer.on('request', (req: IncomingMessage, res: ServerResponse) => {
      serveAwsJson(req, res, { AWSStepFunctions: (op, body) => sfn.call(op, body), AWSEvents: (op, body) => bus.call(op, body) }).catch((error: unknown) =>
        failRequest(req, res, error, warn, () => sendAwsJson(res, 500, { __type: 'InternalFailure', message: 'Unexpected internal error.' })),
      );
    });
    print(`aws          Step Functions and EventBridge stand-ins at ${awsUrl} (loopback, this process and the CLI only)`);

    const routes: LocalRoute[] = API_FUNCTIONS.flatMap((fn) => {
      const handler = loadEntry(fn.entry);
      return fn.routes.map((routeKey) => compileRoute(routeKey, fn.id, handler));
    });

    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      void (async () => {
        let requestUrl: URL;
        try {
          // An absolute URL in the request line (a proxy's form) is taken as it is, and may not parse.
          requestUrl = new URL(req.url ?? '/', url);
        } catch {
          warn(`local server: ${describeRequest(req)} refused: malformed URL (400 REQ0001)`);
          return sendError(res, 'REQ0001');
        }
        const path = requestUrl.pathname;
        // X-Amz-Target means nothing here (the stand-ins have their own listener): such a request is
        // routed like any other, and the SDK's `POST /` is no route (404 REQ0008), as on API Gateway.
        if (isLocalOnlyPath(path) && refuseLocalOnlyRequest(req, res, requestUrl)) return;
        if (path.startsWith('/__simulator/')) {
          if (await handleFaultRoutes(req, res, requestUrl, faults, outbox)) return;
          if (await outbox.handle(req, res, requestUrl)) return;
          if (await apple.handle(req, res, requestUrl)) return;
          if (await google.handle(req, res, requestUrl)) return;
          return sendError(res, 'REQ0008');
        }
        if (await handleLocalWebhookRoutes(req, res, requestUrl, webhooks)) return;
        if (path === '/__local/events' && req.method === 'GET') {
          const id = requestUrl.searchParams.get('synchronizationId');
          const detailType = requestUrl.searchParams.get('detailType');
          const list = bus.events.filter(
            (event) => (!id || event.detail.synchronizationId === id) && (!detailType || event['detail-type'] === detailType),
          );
          const body = Buffer.from(JSON.stringify({ events: list }));
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
          return res.end(body);
        }
        const body = await readBody(req, MAX_REQUEST_BYTES);
        if (body === undefined) return sendError(res, 'REQ0006');
        return dispatchApi(routes, req, res, requestUrl, body);
      })().catch((error: unknown) => failRequest(req, res, error, warn, () => sendError(res, 'S0001')));
    });
    print(`api          ${routes.length} routes at ${url}`);

    const publishers = new DynamoDbPublisherRepository(createDocumentClient(dynamodb.client), LOCAL_TABLE_NAME);
    const seeded = await seedDemo(publishers, secretsDir, {
      issuerId: apple.apiKey.issuerId,
      keyId: apple.apiKey.keyId,
      appAppleId: apple.appAppleId,
    });
    print(`seed         demo publisher ${DEMO.publisherId} ${seeded.created ? 'created' : 'already present'}`);
    // The deployed sweeper's handler: at start-up for what a stopped process left unfinished, then every minute.
    sweeper = startLocalSweeper({
      handler: loadEntry(SWEEPER_FUNCTION.entry) as never,
      context: lambdaContext(SWEEPER_FUNCTION.id),
      intervalMs: options.recovery?.intervalMs ?? 60_000,
      print,
    });
    if (!options.inMemory) {
      const syncs = new DynamoDbSynchronizationRepository(createDocumentClient(dynamodb.client), LOCAL_TABLE_NAME);
      // What the previous process published, read once for both checks below.
      const loggedEvents = readEventLog(eventsLogFile);
      const settled = await settlePublishedBeforeRestart(syncs, loggedEvents, startedAt);
      if (settled > 0) print(`recovery     ${settled} event(s) published before the restart marked as published`);
      // A day back: the deliveries the killed process still held in memory (the retry schedule's longest hop is 10 h).
      const requeued = await webhooks.requeueUndelivered(loggedEvents, new Date(startedAt.getTime() - 24 * 3600_000));
      if (requeued > 0) print(`recovery     ${requeued} webhook deliveries the previous process never attempted queued again`);
    }
    await sweeper.sweep(startedAt);
    // The deployed reconciliation's handler: at start-up (notifications lost while no stack ran), then on a timer.
    const reconcileHandler = loadEntry(RECONCILE_FUNCTION.entry);
    const reconcile = (): Promise<void> => {
      reconciling = reconciling.then(async () => {
        try {
          const report = (await reconcileHandler({}, lambdaContext(RECONCILE_FUNCTION.id))) as ReconcileReport;
          if (report.refreshesStarted + report.errors > 0) {
            print(
              `reconcile    ${report.accepted} lost notification(s) caught up, ${report.duePurchases} due purchase(s), ${report.refreshesStarted} refresh(es) started, ${report.errors} error(s)`,
            );
          }
        } catch (error) {
          print(`reconcile    run failed: ${(error as Error).message}`);
        }
      });
      return reconciling;
    };
    await reconcile();
    const reconcileEveryMs = options.reconcile?.intervalMs ?? RECONCILE_FUNCTION.localIntervalMinutes * 60_000;
    if (reconcileEveryMs > 0) {
      reconcileTimer = setInterval(() => void reconcile(), reconcileEveryMs);
      reconcileTimer.unref();
    }

    const localJson: LocalJson = {
      apiUrl: url,
      simulatorUrl: `${url}/__simulator`,
      publisherId: DEMO.publisherId,
      publisherToken: seeded.publisherToken,
      customerIds: [...DEMO.customerIds],
      customerJwts: seeded.customerJwts,
      apple: { bundleId: DEMO.bundleId, products: { ...DEMO.appleProducts } },
      google: { packageName: DEMO.packageName, products: { ...DEMO.googleProducts } },
    };
    const localJsonPath = join(dataDir, 'local.json');
    writeFileSync(localJsonPath, `${JSON.stringify(localJson, null, 2)}\n`, { mode: 0o600 });
    // For the command line: where this run's DynamoDB Local listens (it changes at every start).
    writeFileSync(
      join(dataDir, 'runtime.json'),
      `${JSON.stringify(
        {
          dynamodbEndpoint: dynamodb.endpoint,
          tableName: LOCAL_TABLE_NAME,
          apiUrl: url,
          // The Step Functions and EventBridge stand-ins (`iap-sync reconcile` starts refreshes there).
          awsEndpointUrl: awsUrl,
          // How `iap-sync sync retry` tells whether an execution may still run (EXPRESS: by age, as the sweeper does).
          workflowType: options.workflowType ?? 'STANDARD',
          pid: process.pid,
          appleRootCertificates: apple.rootCertificateDer.toString('base64'),
        },
        null,
        2,
      )}\n`,
    );

    const ddb = dynamodb;
    let stopped = false;
    return {
      url,
      port,
      awsUrl,
      localJson,
      localJsonPath,
      bus,
      stepFunctions: sfn,
      faults,
      outbox,
      googlePush: { signPushToken: (overrides) => google.signPushToken(overrides), pushServiceAccountEmail: google.pushServiceAccountEmail },
      dynamodb: ddb,
      webhooks,
      stop: async () => {
        if (stopped) return;
        stopped = true;
        clearInterval(reconcileTimer);
        await reconciling;
        await sweeper?.stop();
        sfn.abortAll();
        await sfn.drain();
        await webhooks.stop();
        await Promise.all(
          [server, awsServer].map(
            (listener) =>
              new Promise<void>((r) => {
                listener.close(() => r());
                listener.closeAllConnections();
              }),
          ),
        );
        taskClient?.destroy();
        await ddb.stop();
      },
    };
  } catch (error) {
    clearInterval(reconcileTimer);
    await sweeper?.stop();
    stepFunctions?.abortAll();
    // close() calls back (with an error) on a listener that never started: both settle.
    await Promise.all([server, awsServer].map((listener) => new Promise<void>((r) => listener.close(() => r()))));
    await dynamodb?.stop();
    throw error;
  }
}
