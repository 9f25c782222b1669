import { createHash } from 'node:crypto';
import { Logger as PowertoolsLogger, type LogItem } from '@aws-lambda-powertools/logger';
import type { Context } from 'aws-lambda';

/**
 * Structured JSON logs, one line per entry, written by Powertools Logger (level, message,
 * timestamp, service, xray_trace_id and, in Lambda, the function_* / cold_start keys of the
 * invocation). Keys are chosen by callers (synchronizationId, publisherId, transactionId,
 * purchaseTokenHash); secrets and full tokens are never passed in, and `redactFields` removes
 * them anyway if one slips through.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** What `createLogger` returns: the port, plus the Lambda context of the current invocation. */
export interface FunctionLogger extends Logger {
  /** Adds the invocation's function_request_id, cold_start, function_name… to the following entries. */
  addContext(context: Context): void;
}

/**
 * Purchase tokens are up to 4096 characters and grant access to the purchase: logs carry the first
 * 16 hex digits of their SHA-256, which is also the start of the key the table stores them under
 * (`google#token#<sha256>`), so support can find the records from a log line.
 */
export function purchaseTokenHash(purchaseToken: string): string {
  return createHash('sha256').update(purchaseToken).digest('hex').slice(0, 16);
}

/** Keys whose value is a credential whatever it looks like. */
const SECRET_KEYS = new Set([
  'authorization',
  'x-publisher-token',
  'publishertoken',
  'token',
  'accesstoken',
  'jwt',
  'secret',
  'secrets',
  'password',
  'privatekey',
  'apikey',
  'signature',
  'headers',
]);

/**
 * Credentials recognisable by their shape, wherever they appear (an error message, a header echoed
 * by a library): compact JWS/JWT, Bearer values, publisher tokens (`pt_…`) and webhook secrets (`whsec_…`).
 */
const SECRET_PATTERNS: [RegExp, string][] = [
  [/eyJ[\w-]*\.[\w-]+\.[\w-]*/g, '[jwt]'],
  [/\b(Bearer)\s+[\w.~+/=-]+/gi, '$1 [redacted]'],
  [/\bpt_[\w-]{8,}/g, 'pt_[redacted]'],
  [/\bwhsec_[\w+/=-]+/g, 'whsec_[redacted]'],
];

function redactString(value: string): string {
  let out = value;
  for (const [pattern, replacement] of SECRET_PATTERNS) out = out.replace(pattern, replacement);
  return out;
}

/** A URL without user info or query values (receivers sometimes put a token there). */
function redactUrl(value: string): string {
  try {
    const url = new URL(value);
    url.username = '';
    url.password = '';
    for (const key of [...url.searchParams.keys()]) url.searchParams.set(key, 'redacted');
    return redactString(url.toString());
  } catch {
    return redactString(value);
  }
}

const MAX_DEPTH = 4;

/** Causes followed below a logged error (`TypeError: fetch failed` ← `Error: connect ECONNREFUSED` …). */
const MAX_CAUSE_DEPTH = 3;
/** Longest message kept of an error or a cause. */
const MAX_ERROR_MESSAGE = 1000;

function errorText(value: string): string {
  const redacted = redactString(value);
  return redacted.length > MAX_ERROR_MESSAGE ? `${redacted.slice(0, MAX_ERROR_MESSAGE - 1)}…` : redacted;
}

/**
 * An error as logged: name, message, `code` (ECONNREFUSED, UND_ERR_CONNECT_TIMEOUT…) and its
 * `cause`, the same way down to MAX_CAUSE_DEPTH. Nothing else: SDK errors carry their request
 * (headers with credentials) as properties.
 */
function errorFields(error: unknown, depth: number): Record<string, unknown> | undefined {
  if (typeof error === 'string') return { message: errorText(error) };
  if (typeof error !== 'object' || error === null) return undefined;
  const { name, message, code, cause } = error as { name?: unknown; message?: unknown; code?: unknown; cause?: unknown };
  const out: Record<string, unknown> = {};
  if (typeof name === 'string') out.name = errorText(name);
  if (typeof message === 'string') out.message = errorText(message);
  if (typeof code === 'string' || typeof code === 'number') out.code = typeof code === 'string' ? errorText(code) : code;
  if (cause !== undefined && depth < MAX_CAUSE_DEPTH) {
    const fields = errorFields(cause, depth + 1);
    if (fields !== undefined) out.cause = fields;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

function redactValue(key: string, value: unknown, depth: number): unknown {
  if (SECRET_KEYS.has(key.toLowerCase())) return value === undefined ? undefined : '[redacted]';
  if (typeof value === 'string') return key.toLowerCase().endsWith('url') ? redactUrl(value) : redactString(value);
  if (value instanceof Error) return errorFields(value, 0);
  if (depth >= MAX_DEPTH || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((item) => redactValue('', item, depth + 1));
  return redactFields(value as Record<string, unknown>, depth + 1);
}

/**
 * The fields of a log entry with credentials removed: a `purchaseToken` becomes its
 * `purchaseTokenHash`, credential-named keys become `[redacted]`, JWTs, Bearer values and our own
 * token formats are masked inside any string, URLs lose user info and query values, errors keep
 * only their name, message, code and cause (see errorFields).
 */
export function redactFields(fields: Record<string, unknown>, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) {
    if (key === 'purchaseToken') {
      if (typeof value === 'string') out.purchaseTokenHash = purchaseTokenHash(value);
      continue;
    }
    out[key] = redactValue(key, value, depth);
  }
  return out;
}

/**
 * Powertools Logger writing each line through `write` when one is given (tests capture lines this
 * way; Powertools itself always writes to its own Console on stdout).
 */
class LineLogger extends PowertoolsLogger {
  // A plain property: Powertools may print from its constructor, before this is assigned.
  write: ((line: string) => void) | undefined;

  protected override printLog(logLevel: number, log: LogItem): void {
    if (this.write === undefined) {
      super.printLog(logLevel, log);
      return;
    }
    log.prepareForPrint();
    this.write(JSON.stringify(log.getAttributes(), this.getJsonReplacer()));
  }
}

/**
 * A logger for one function. `service` names it when POWERTOOLS_SERVICE_NAME is not set (the local
 * runtime and tests); deployed, the service is `iap-sync-<stage>` and the function comes from the
 * Lambda context. `level` defaults to LOG_LEVEL, then `info`.
 */
export function createLogger(
  service: string,
  level: LogLevel | 'silent' = (process.env.LOG_LEVEL as LogLevel | undefined) ?? 'info',
  write?: (line: string) => void,
): FunctionLogger {
  const powertools = new LineLogger({
    serviceName: process.env.POWERTOOLS_SERVICE_NAME || service,
    logLevel: level.toUpperCase() as Uppercase<LogLevel | 'silent'>,
  });
  powertools.write = write;
  const log = (lvl: LogLevel) => (message: string, fields: Record<string, unknown> = {}) => {
    powertools[lvl](redactString(message), redactFields(fields));
  };
  return {
    debug: log('debug'),
    info: log('info'),
    warn: log('warn'),
    error: log('error'),
    addContext: (context) => powertools.addContext(context),
  };
}

/** A logger that adds `keys` to every entry; safe when several invocations share a process (the local runtime). */
export function withKeys(logger: Logger, keys: Record<string, unknown>): Logger {
  const log = (lvl: LogLevel) => (message: string, fields: Record<string, unknown> = {}) => logger[lvl](message, { ...keys, ...fields });
  return { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
}
