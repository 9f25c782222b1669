import { parseArgs } from 'node:util';
import { LocalStartError } from './dynamodb-local';
import { startLocalStack } from './stack';

/** `npm start`: the whole pipeline on localhost (README, "Two commands"). */
async function main(): Promise<void> {
  // The AWS SDK warns at length that its 2027 releases will need Node 22; this project runs on 20.19+
  // on purpose (Lambda runs nodejs22.x), and the warning would bury the start-up lines.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      'data-dir': { type: 'string', default: '.iap-sync' },
      'in-memory': { type: 'boolean', default: false },
      'log-level': { type: 'string', default: 'warn' },
      // As a deployed stack's default (cdk.json): EXPRESS; STANDARD rehearses a stack deployed with -c workflowType=STANDARD.
      'workflow-type': { type: 'string', default: 'EXPRESS' },
    },
  });
  const workflowType = values['workflow-type'];
  if (workflowType !== 'STANDARD' && workflowType !== 'EXPRESS') {
    throw new LocalStartError(`Invalid --workflow-type: ${workflowType} (STANDARD or EXPRESS)`);
  }
  const port = Number(values.port ?? process.env.PORT ?? 3000);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new LocalStartError(`Invalid port: ${values.port ?? process.env.PORT}`);
  const logLevel = values['log-level'] as 'debug' | 'info' | 'warn' | 'error' | 'silent';
  const stack = await startLocalStack({
    port,
    dataDir: values['data-dir'] ?? '.iap-sync',
    inMemory: values['in-memory'] ?? false,
    logLevel,
    workflowType,
    print: (line) => process.stdout.write(`${line}\n`),
  });
  process.stdout.write(`ready        ${stack.url} — credentials and demo data in ${stack.localJsonPath}\n`);
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    process.stdout.write('stopping…\n');
    await stack.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown());
  process.on('SIGTERM', () => void shutdown());
}

main().catch((error: unknown) => {
  process.stderr.write(`iap-sync: ${error instanceof LocalStartError ? error.message : (error as Error).message ?? String(error)}\n`);
  process.exit(1);
});
