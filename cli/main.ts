/**
 * `iap-sync`: the command line that manages a stack (README, "Command line").
 * This file only parses arguments, prints and chooses the exit code; the work is in ./commands/
 * (one file per command group), which never import this one.
 * Exit codes: 0 done, 1 the command failed, 2 the command line is wrong.
 */
import { parseArgs } from 'node:util';
import type { Args } from './args';
import { CommandError, UsageError } from './errors';
import { DEFAULT_DATA_DIR, resolveTarget, type StackTarget, type TargetOptions } from './target';
import { parseReconcile, reconcile } from './commands/reconcile';
import { appleConfigure, appleTestNotification, parseAppleConfigure, parseAppleTestNotification } from './commands/apple';
import { customerAdd, parseCustomerAdd } from './commands/customer';
import { googleConfigure, parseGoogleConfigure } from './commands/google';
import { jwtConfigure, jwtIssue, parseJwtConfigure, parseJwtIssue } from './commands/jwt';
import { offerMap, parseOfferMap } from './commands/offer';
import { parsePublisherCreate, parsePublisherSet, publisherCreate, publisherList, publisherSet } from './commands/publisher';
import { parseSyncRetry, parseSyncShow, syncRetry, syncShow } from './commands/sync';
import {
  parseWebhookAdd,
  parseWebhookDeliveries,
  parseWebhookEndpoint,
  parseWebhookList,
  parseWebhookReplay,
  webhookAdd,
  webhookDeliveries,
  webhookDisable,
  webhookEnable,
  webhookList,
  webhookReplay,
  webhookRotateSecret,
} from './commands/webhook';

interface OptionSpec {
  type: 'string' | 'boolean';
  /** Shown after a string option in help, e.g. `--id N`. */
  value?: string;
  description: string;
  required?: boolean;
  short?: string;
}

interface CommandSpec {
  name: string;
  /** A positional argument, e.g. `<synchronizationId>`. */
  positional?: string;
  summary: string;
  options: Record<string, OptionSpec>;
  /** Refused against a deployed stack. */
  localOnly?: boolean;
  /** Checks the options before any stack is contacted (throws UsageError). */
  validate?(args: Args, positionals: string[]): unknown;
  run(target: StackTarget, args: Args, positionals: string[]): Promise<string | object>;
}

const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  'data-dir': { type: 'string', value: 'DIR', description: `data dir of the local stack (\`npm start\`), default ${DEFAULT_DATA_DIR}` },
  stack: { type: 'string', value: 'NAME', description: 'a deployed stack (CloudFormation name), with the AWS credentials of the shell' },
  region: { type: 'string', value: 'R', description: 'AWS region of --stack (default: the shell\'s)' },
  help: { type: 'boolean', short: 'h', description: 'show help' },
};

export const COMMANDS: CommandSpec[] = [
  {
    name: 'publisher create',
    summary: 'create a publisher; prints its publisher token once',
    options: {
      id: { type: 'string', value: 'N', description: 'publisher id (int32 > 0)', required: true },
      name: { type: 'string', value: 'NAME', description: 'display name', required: true },
      'storekit-activated': { type: 'boolean', description: 'activate the StoreKit 2 integration now' },
      'ownership-policy': { type: 'string', value: 'keep|transfer', description: 'a purchase owned by another customer: keep (default) or transfer' },
      'jwt-issuer': { type: 'string', value: 'ISS', description: 'required `iss` of customer JWTs' },
      'jwt-audience': { type: 'string', value: 'AUD', description: 'required `aud` of customer JWTs' },
    },
    validate: (args) => parsePublisherCreate(args),
    run: (target, args) => publisherCreate(target, args),
  },
  {
    name: 'publisher set',
    summary: "change a publisher's settings: the StoreKit migration (while on, Apple transfers answer 422 SK2C0005)",
    options: {
      publisher: { type: 'string', value: 'N', description: 'publisher id', required: true },
      'storekit-migration': { type: 'string', value: 'on|off', description: 'StoreKit 2 migration in progress', required: true },
    },
    validate: (args) => parsePublisherSet(args),
    run: (target, args) => publisherSet(target, args),
  },
  {
    name: 'publisher list',
    summary: 'list publisher ids',
    options: {},
    run: (target) => publisherList(target),
  },
  {
    name: 'customer add',
    summary: 'add a customer to a publisher',
    options: {
      publisher: { type: 'string', value: 'N', description: 'publisher id', required: true },
      customer: { type: 'string', value: 'M', description: 'customer id (int32 > 0)', required: true },
    },
    validate: (args) => parseCustomerAdd(args),
    run: (target, args) => customerAdd(target, args),
  },
  {
    name: 'offer map',
    summary: 'map a store product to the offer it grants',
    options: {
      publisher: { type: 'string', value: 'N', description: 'publisher id', required: true },
      store: { type: 'string', value: 'apple|google', description: 'the store', required: true },
      product: { type: 'string', value: 'P', description: 'store product id', required: true },
      offer: { type: 'string', value: 'O', description: 'offer id (1-64 characters)', required: true },
    },
    validate: (args) => parseOfferMap(args),
    run: (target, args) => offerMap(target, args),
  },
  {
    name: 'apple configure',
    summary: "set a publisher's App Store Server API configuration",
    options: {
      publisher: { type: 'string', value: 'N', description: 'publisher id', required: true },
      'bundle-id': { type: 'string', value: 'B', description: 'app bundle id', required: true },
      'issuer-id': { type: 'string', value: 'I', description: 'App Store Connect API issuer id (UUID)', required: true },
      'key-id': { type: 'string', value: 'K', description: 'App Store Connect API key id (10 characters)', required: true },
      'app-apple-id': { type: 'string', value: 'A', description: "the app's Apple ID (required with Production)" },
      environments: { type: 'string', value: 'LIST', description: 'lookup order, default Production,Sandbox' },
      'private-key-file': {
        type: 'string',
        value: 'PATH.p8',
        description: "API key (.p8), stored as a secret; default: the current key, or locally the simulator's",
      },
      activate: { type: 'boolean', description: 'also activate the StoreKit 2 integration' },
      'require-app-account-token': {
        type: 'string',
        value: 'NAMESPACE',
        description: "customer-JWT registers gain only purchases whose appAccountToken is the UUID v5 of the customer id under this namespace UUID",
      },
      'allow-any-app-account-token': { type: 'boolean', description: 'lift that requirement (neither option: the current setting is kept)' },
    },
    validate: (args) => parseAppleConfigure(args),
    run: (target, args) => appleConfigure(target, args),
  },
  {
    name: 'apple test-notification',
    summary: 'ask Apple (locally: the simulator) to send a TEST notification to the notification URL',
    options: {
      publisher: { type: 'string', value: 'N', description: 'publisher id', required: true },
      environment: { type: 'string', value: 'ENV', description: 'Sandbox (default) or Production' },
    },
    validate: (args) => parseAppleTestNotification(args),
    run: (target, args) => appleTestNotification(target, args),
  },
  {
    name: 'reconcile',
    summary:
      "reconcile one publisher now: catch up lost Apple notifications and Google's voided purchases, re-check expired purchases, retry pending Google acknowledgements; prints what was corrected",
    localOnly: true,
    options: {
      publisher: { type: 'string', value: 'N', description: 'publisher id', required: true },
      since: { type: 'string', value: 'ISO', description: "read Apple's notification history from this time (default: where the last run ended; the cursor is not moved)" },
      wait: { type: 'string', value: 'SECONDS', description: 'wait this long for the refreshes to finalize (default 60)' },
      all: {
        type: 'boolean',
        description: 'also re-check purchases not yet due (every one still giving or able to regain access): corrects Google pushes lost for good, at 2 store calls each',
      },
    },
    validate: (args) => parseReconcile(args),
    run: (target, args) => reconcile(target, args),
  },
  {
    name: 'google configure',
    summary: "add or replace a publisher's Google Play Billing profile (package name + service account) and its notification push settings",
    options: {
      publisher: { type: 'string', value: 'N', description: 'publisher id', required: true },
      'package-name': { type: 'string', value: 'P', description: 'Android application id', required: true },
      'service-account-file': {
        type: 'string',
        value: 'PATH.json',
        description: "service account key, stored as a secret; default: the current one, or locally the simulator's",
      },
      'push-service-account': {
        type: 'string',
        value: 'EMAIL',
        description: "the Pub/Sub push subscription's service account: notification pushes must carry its OIDC token (default: the current one)",
      },
      'push-audience': {
        type: 'string',
        value: 'URL',
        description: "the audience set on the push subscription (https; http only on loopback); default: the current one, else the push endpoint's URL",
      },
    },
    validate: (args) => parseGoogleConfigure(args),
    run: (target, args) => googleConfigure(target, args),
  },
  {
    name: 'jwt issue',
    summary: "issue a customer JWT signed with the publisher's HS256 secret (local stack only)",
    localOnly: true,
    options: {
      publisher: { type: 'string', value: 'N', description: 'publisher id', required: true },
      customer: { type: 'string', value: 'M', description: 'customer id', required: true },
      ttl: { type: 'string', value: 'SECONDS', description: 'lifetime, default 3600' },
    },
    validate: (args) => parseJwtIssue(args),
    run: (target, args) => jwtIssue(target, args),
  },
  {
    name: 'jwt configure',
    summary: "set how a publisher's customer JWTs are verified: JWKS URL (RS256/ES256), iss/aud, HS256 on/off",
    options: {
      publisher: { type: 'string', value: 'N', description: 'publisher id', required: true },
      'jwks-url': { type: 'string', value: 'URL', description: 'JSON Web Key Set of RS256/ES256 keys (https; http only on loopback)' },
      'remove-jwks-url': { type: 'boolean', description: 'stop accepting RS256/ES256 tokens' },
      issuer: { type: 'string', value: 'ISS', description: 'required `iss` of customer JWTs' },
      'clear-issuer': { type: 'boolean', description: 'no longer check `iss`' },
      audience: { type: 'string', value: 'AUD', description: 'required `aud` of customer JWTs' },
      'clear-audience': { type: 'boolean', description: 'no longer check `aud`' },
      'disable-hs256': { type: 'boolean', description: "stop accepting HS256 tokens (the secret stays stored, unused)" },
    },
    validate: (args) => parseJwtConfigure(args),
    run: (target, args) => jwtConfigure(target, args),
  },
  {
    name: 'sync show',
    positional: '<synchronizationId>',
    summary: 'show a stored synchronization: status, result, attempts, restarts, the executions it ran under, its retry, a pending Google acknowledgement',
    options: {
      publisher: { type: 'string', value: 'N', description: 'the publisher it belongs to (required: ids are unique per publisher)' },
    },
    validate: (args, positionals) => parseSyncShow(positionals[0], args),
    run: (target, args, positionals) => syncShow(target, positionals[0], args),
  },
  {
    name: 'sync retry',
    positional: '<synchronizationId>',
    summary:
      'start a synchronization that did not succeed again: a SYNCHRONIZATION_FAILED one as a new synchronization of the same request, ' +
      'a stuck open one (execution ended) by restarting it; never a successful one; running it twice changes nothing',
    options: {
      publisher: { type: 'string', value: 'N', description: 'the publisher it belongs to (required: ids are unique per publisher)' },
    },
    validate: (args, positionals) => parseSyncRetry(positionals[0], args),
    run: (target, args, positionals) => syncRetry(target, positionals[0], args),
  },
  {
    name: 'webhook add',
    summary: 'register a webhook endpoint; prints its signing secret once',
    options: {
      publisher: { type: 'string', value: 'N', description: 'publisher id', required: true },
      url: { type: 'string', value: 'URL', description: 'receiver URL (https and a public address on deployed stacks)', required: true },
      topics: { type: 'string', value: 'LIST', description: 'comma-separated: inappPurchaseSyncResult, inappEntitlementChanged (default inappPurchaseSyncResult)' },
    },
    validate: (args) => parseWebhookAdd(args),
    run: (target, args) => webhookAdd(target, args),
  },
  {
    name: 'webhook list',
    summary: "list a publisher's webhook endpoints",
    options: { publisher: { type: 'string', value: 'N', description: 'publisher id', required: true } },
    validate: (args) => parseWebhookList(args),
    run: (target, args) => webhookList(target, args),
  },
  {
    name: 'webhook disable',
    summary: 'stop delivering to an endpoint',
    options: {
      publisher: { type: 'string', value: 'N', description: 'publisher id', required: true },
      endpoint: { type: 'string', value: 'E', description: 'endpoint id (from webhook add or list)', required: true },
    },
    validate: (args) => parseWebhookEndpoint(args),
    run: (target, args) => webhookDisable(target, args),
  },
  {
    name: 'webhook enable',
    summary: 'deliver to an endpoint again',
    options: {
      publisher: { type: 'string', value: 'N', description: 'publisher id', required: true },
      endpoint: { type: 'string', value: 'E', description: 'endpoint id (from webhook add or list)', required: true },
    },
    validate: (args) => parseWebhookEndpoint(args),
    run: (target, args) => webhookEnable(target, args),
  },
  {
    name: 'webhook rotate-secret',
    summary: 'new signing secret (printed once); the old one keeps signing for 24 h',
    options: {
      publisher: { type: 'string', value: 'N', description: 'publisher id', required: true },
      endpoint: { type: 'string', value: 'E', description: 'endpoint id (from webhook add or list)', required: true },
    },
    validate: (args) => parseWebhookEndpoint(args),
    run: (target, args) => webhookRotateSecret(target, args),
  },
  {
    name: 'webhook deliveries',
    summary: 'the delivery log: status, latency and error of every attempt',
    options: {
      publisher: { type: 'string', value: 'N', description: 'publisher id', required: true },
      since: { type: 'string', value: 'ISO', description: 'only attempts since this time' },
      limit: { type: 'string', value: 'N', description: 'at most N attempts (default 50)' },
    },
    validate: (args) => parseWebhookDeliveries(args),
    run: (target, args) => webhookDeliveries(target, args),
  },
  {
    name: 'webhook replay',
    positional: '[<webhook-id>]',
    summary: 're-send a delivery (same webhook-id) from the dead letters or the log, or all since a time',
    options: {
      publisher: { type: 'string', value: 'N', description: 'publisher id (with --since)' },
      since: { type: 'string', value: 'ISO', description: 'replay every delivery since this time' },
      limit: { type: 'string', value: 'N', description: 'at most N deliveries' },
    },
    validate: (args, positionals) => parseWebhookReplay(positionals[0], args),
    run: (target, args, positionals) => webhookReplay(target, positionals[0], args),
  },
];

type ParseOptions = Record<string, { type: 'string' | 'boolean'; short?: string }>;

function parseConfig(specs: Record<string, OptionSpec>): ParseOptions {
  const options: ParseOptions = {};
  for (const [name, spec] of Object.entries(specs)) options[name] = { type: spec.type, ...(spec.short ? { short: spec.short } : {}) };
  return options;
}

function parse(argv: string[], specs: Record<string, OptionSpec>): { values: Args; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args: argv, options: parseConfig(specs), strict: true, allowPositionals: true });
    return { values: values as Args, positionals };
  } catch (error) {
    // node:util's messages span lines; the command line prints one.
    throw new UsageError((error as Error).message.replace(/\s*\n\s*/g, ' '));
  }
}

function optionLines(specs: Record<string, OptionSpec>): string[] {
  const rows = Object.entries(specs).map(([name, spec]) => {
    const left = `${spec.short ? `-${spec.short}, ` : ''}--${name}${spec.value ? ` ${spec.value}` : ''}`;
    return [left, `${spec.description}${spec.required ? ' (required)' : ''}`] as const;
  });
  const width = Math.max(0, ...rows.map(([left]) => left.length));
  return rows.map(([left, right]) => `  ${left.padEnd(width)}  ${right}`);
}

export function generalHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length + (c.positional ? c.positional.length + 1 : 0)));
  return [
    'iap-sync: manage an iap-sync stack (the local one of `npm start` by default, or a deployed one with --stack)',
    '',
    'Usage: iap-sync <command> [options]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${`${c.name}${c.positional ? ` ${c.positional}` : ''}`.padEnd(width)}  ${c.summary}`),
    '',
    'Target options (every command):',
    ...optionLines(GLOBAL_OPTIONS),
    '',
    'Run `iap-sync <command> --help` for its options. Output is JSON on stdout.',
    'Exit codes: 0 done, 1 the command failed, 2 the command line is wrong.',
    '',
  ].join('\n');
}

export function commandHelp(command: CommandSpec): string {
  const required = Object.entries(command.options)
    .filter(([, spec]) => spec.required)
    .map(([name, spec]) => `--${name}${spec.value ? ` ${spec.value}` : ''}`);
  return [
    `iap-sync ${command.name}: ${command.summary}`,
    '',
    `Usage: iap-sync ${[command.name, command.positional, ...required].filter(Boolean).join(' ')} [options]`,
    '',
    ...(Object.keys(command.options).length > 0 ? ['Options:', ...optionLines(command.options), ''] : []),
    'Target options:',
    ...optionLines(GLOBAL_OPTIONS),
    '',
  ].join('\n');
}

function findCommand(positionals: string[]): CommandSpec | undefined {
  const words = positionals.slice(0, 2).join(' ');
  return COMMANDS.find((command) => command.name === words);
}

function hasCode(error: unknown, code: string, depth = 0): boolean {
  if (typeof error !== 'object' || error === null || depth > 5) return false;
  const e = error as { code?: unknown; cause?: unknown; errors?: unknown };
  if (e.code === code) return true;
  if (Array.isArray(e.errors) && e.errors.some((inner) => hasCode(inner, code, depth + 1))) return true;
  return hasCode(e.cause, code, depth + 1);
}

/** One line, no stack trace. */
function describeError(error: unknown, target: StackTarget | undefined): string {
  if (error instanceof UsageError || error instanceof CommandError) return error.message;
  // The SDK keeps `code` on the error, except where it re-wraps a foreign-realm error into its message.
  const refused = hasCode(error, 'ECONNREFUSED') || /\bECONNREFUSED\b/.test(String((error as { message?: unknown })?.message ?? ''));
  if (target?.kind === 'local' && refused) {
    return `Cannot reach DynamoDB Local of the ${target.description}: is it running (\`npm start\`)?`;
  }
  const e = error as { name?: unknown; message?: unknown };
  const text = typeof e?.message === 'string' && e.message ? e.message : String(error);
  const name = typeof e?.name === 'string' && e.name !== 'Error' ? `${e.name}: ` : '';
  return `${name}${text}`.replace(/\s*\n\s*/g, ' ');
}

export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
}

/** Runs one command line; answers the exit code. */
export async function runCli(
  argv: string[],
  io: CliIo,
  resolve: (options: TargetOptions) => Promise<StackTarget> = resolveTarget,
): Promise<number> {
  let target: StackTarget | undefined;
  try {
    const allOptions: Record<string, OptionSpec> = { ...GLOBAL_OPTIONS };
    for (const command of COMMANDS) Object.assign(allOptions, command.options);
    const first = parse(argv, allOptions);
    const command = findCommand(first.positionals);
    if (!command) {
      if (first.values.help === true || argv.length === 0) {
        (argv.length === 0 ? io.stderr : io.stdout)(generalHelp());
        return argv.length === 0 ? 2 : 0;
      }
      throw new UsageError(`Unknown command '${first.positionals.slice(0, 2).join(' ')}'. Run \`iap-sync --help\` for the list.`);
    }
    if (first.values.help === true) {
      io.stdout(commandHelp(command));
      return 0;
    }
    const { values, positionals } = parse(argv, { ...GLOBAL_OPTIONS, ...command.options });
    const rest = positionals.slice(2);
    const expected = command.positional ? 1 : 0;
    if (rest.length !== expected) {
      throw new UsageError(
        expected === 0
          ? `Unexpected argument '${rest[0] ?? ''}' for ${command.name}`
          : `${command.name} takes one ${command.positional ?? 'argument'}`,
      );
    }
    for (const [name, spec] of Object.entries(command.options)) {
      if (spec.required && (values[name] === undefined || values[name] === '')) {
        throw new UsageError(`--${name} is required. Run \`iap-sync ${command.name} --help\`.`);
      }
    }
    command.validate?.(values, rest);
    const str = (name: string) => (typeof values[name] === 'string' ? values[name] : undefined);
    const dataDir = str('data-dir');
    const stack = str('stack');
    const region = str('region');
    if (command.localOnly && stack !== undefined) {
      throw new UsageError(`${command.name} works only with the local stack (deployed stacks keep their secrets in Secrets Manager)`);
    }
    target = await resolve({
      ...(dataDir !== undefined ? { dataDir } : {}),
      ...(stack !== undefined ? { stack } : {}),
      ...(region !== undefined ? { region } : {}),
    });
    const output = await command.run(target, values, rest);
    io.stdout(typeof output === 'string' ? `${output}\n` : `${JSON.stringify(output, null, 2)}\n`);
    return 0;
  } catch (error) {
    io.stderr(`iap-sync: ${describeError(error, target)}\n`);
    return error instanceof UsageError ? 2 : 1;
  } finally {
    target?.close();
  }
}

/** The process entry: cli/bin.cjs (`npx iap-sync`) and `tsx cli/main.ts` both end here. */
export function main(): void {
  // The SDK warns on Node 20 about its releases of 2027; engines pins Node >= 20.19 on purpose, and
  // a multi-line warning would break the one-line error output.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  void runCli(process.argv.slice(2), {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
  }).then((code) => {
    // exitCode rather than exit(): lets stdout drain when piped.
    process.exitCode = code;
  });
}

if (require.main === module) main();
