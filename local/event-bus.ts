import { randomUUID } from 'node:crypto';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { AwsJsonError } from './step-functions';

/** An event as EventBridge delivers it to targets. */
export interface EventEnvelope {
  version: '0';
  id: string;
  'detail-type': string;
  source: string;
  account: string;
  time: string;
  region: string;
  resources: string[];
  detail: Record<string, unknown>;
}

/** A line of the bus log (`events.jsonl`), as far as it was written. */
export type LoggedEvent = Partial<EventEnvelope>;

/**
 * The events a bus logged to `logFile` (LocalEventBus `logFile`), oldest first. A missing file is
 * none; a line a killed process cut short is skipped: that PutEvents did not complete.
 */
export function readEventLog(logFile: string): LoggedEvent[] {
  if (!existsSync(logFile)) return [];
  const events: LoggedEvent[] = [];
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      const event: unknown = JSON.parse(line);
      if (event !== null && typeof event === 'object') events.push(event as LoggedEvent);
    } catch {
      // cut short
    }
  }
  return events;
}

export interface LocalRule {
  name: string;
  /** The same pattern object the CDK stack deploys. */
  pattern: Record<string, unknown>;
  target: (event: EventEnvelope) => Promise<void> | void;
}

type Pattern = Record<string, unknown>;

/**
 * EventBridge pattern matching for the forms this project uses: arrays of allowed values and
 * nested objects (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns.html).
 */
export function matchesPattern(pattern: Pattern, value: Record<string, unknown>): boolean {
  return Object.entries(pattern).every(([key, expected]) => {
    const actual = value[key];
    if (Array.isArray(expected)) {
      const candidates = Array.isArray(actual) ? actual : [actual];
      return candidates.some((candidate) => expected.includes(candidate));
    }
    if (expected !== null && typeof expected === 'object') {
      return actual !== null && typeof actual === 'object' && matchesPattern(expected as Pattern, actual as Record<string, unknown>);
    }
    return false;
  });
}

/**
 * The event bus of `npm start`: a PutEvents endpoint reached by the unchanged EventBridge client,
 * matching the deployed rule patterns and delivering to the same targets.
 */
export class LocalEventBus {
  readonly events: EventEnvelope[] = [];

  constructor(
    private readonly options: {
      busName: string;
      rules: LocalRule[];
      /** JSON lines file keeping every event (absent in memory mode). */
      logFile?: string;
      onEvent?: (event: EventEnvelope) => void;
      maxKept?: number;
    },
  ) {}

  async call(operation: string, body: Record<string, unknown>): Promise<unknown> {
    if (operation !== 'PutEvents') {
      throw new AwsJsonError('UnknownOperationException', `Operation ${operation} is not supported locally`);
    }
    return this.putEvents(Array.isArray(body.Entries) ? (body.Entries as Record<string, unknown>[]) : []);
  }

  /** PutEvents' answer: an EventId or an ErrorCode per entry, in order. */
  async putEvents(entries: Record<string, unknown>[]): Promise<{ FailedEntryCount: number; Entries: Record<string, string>[] }> {
    const results: Record<string, string>[] = [];
    let failed = 0;
    for (const entry of entries) {
      const outcome = await this.put(entry);
      if ('ErrorCode' in outcome) failed += 1;
      results.push(outcome);
    }
    return { FailedEntryCount: failed, Entries: results };
  }

  private async put(entry: Record<string, unknown>): Promise<Record<string, string>> {
    const busName = typeof entry.EventBusName === 'string' ? entry.EventBusName : 'default';
    if (busName !== this.options.busName && !busName.endsWith(`:event-bus/${this.options.busName}`)) {
      return { ErrorCode: 'NotFoundException', ErrorMessage: `Event bus ${busName} does not exist.` };
    }
    let detail: unknown;
    try {
      detail = JSON.parse(String(entry.Detail ?? ''));
    } catch {
      return { ErrorCode: 'MalformedDetail', ErrorMessage: 'Detail is malformed.' };
    }
    if (typeof entry.Source !== 'string' || typeof entry.DetailType !== 'string' || detail === null || typeof detail !== 'object') {
      return { ErrorCode: 'InvalidArgument', ErrorMessage: 'Source, DetailType and an object Detail are required.' };
    }
    const event: EventEnvelope = {
      version: '0',
      id: randomUUID(),
      'detail-type': entry.DetailType,
      source: entry.Source,
      account: '000000000000',
      time: new Date().toISOString(),
      region: 'us-east-1',
      resources: Array.isArray(entry.Resources) ? (entry.Resources as string[]) : [],
      detail: detail as Record<string, unknown>,
    };
    this.events.push(event);
    if (this.events.length > (this.options.maxKept ?? 10_000)) this.events.shift();
    if (this.options.logFile) appendFileSync(this.options.logFile, `${JSON.stringify(event)}\n`);
    this.options.onEvent?.(event);
    for (const rule of this.options.rules) {
      if (matchesPattern(rule.pattern, event as unknown as Record<string, unknown>)) {
        // Targets run after PutEvents answers, as EventBridge delivers asynchronously.
        setImmediate(() => void Promise.resolve(rule.target(event)).catch(() => undefined));
      }
    }
    return { EventId: event.id };
  }
}
