/**
 * Structured JSON logs, one line per entry. Keys are chosen by callers (synchronizationId,
 * publisherId, transactionId); secrets and full tokens are never passed in.
 */
type Level = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<Level | 'silent', number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

function describe(value: unknown): unknown {
  if (value instanceof Error) return { name: value.name, message: value.message };
  return value;
}

export function createLogger(
  service: string,
  level: Level | 'silent' = (process.env.LOG_LEVEL as Level | undefined) ?? 'info',
  write: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
): Logger {
  const min = ORDER[level] ?? ORDER.info;
  const log = (lvl: Level) => (message: string, fields: Record<string, unknown> = {}) => {
    if (ORDER[lvl] < min) return;
    const entry: Record<string, unknown> = { level: lvl, service, message, timestamp: new Date().toISOString() };
    for (const [key, value] of Object.entries(fields)) entry[key] = describe(value);
    write(JSON.stringify(entry));
  };
  return { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
}
