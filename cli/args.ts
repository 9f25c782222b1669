/**
 * Reading and checking parsed options, shared by every command group. Commands validate their own
 * input with these, so tests call them without a process (cli/main.ts only parses).
 */
import { UsageError } from './errors';

/** Parsed options, keyed by long option name without dashes (`bundle-id`), as node:util parseArgs gives them. */
export type Args = Readonly<Record<string, string | boolean | undefined>>;

export const INT32_MAX = 2_147_483_647;
/** Store product ids and offer ids: visible characters only, so a stray space is not stored as part of an id. */
export const PLAIN_ID = /^[\x21-\x7E]+$/;
/** `iss` and `aud` of customer JWTs, set by `publisher create` and `jwt configure`. */
export const MAX_JWT_CLAIM = 256;

export function optionalString(args: Args, name: string): string | undefined {
  const value = args[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new UsageError(`--${name} needs a value`);
  return value;
}

export function requiredString(args: Args, name: string): string {
  const value = optionalString(args, name);
  if (value === undefined || value === '') throw new UsageError(`--${name} is required`);
  return value;
}

export function flag(args: Args, name: string): boolean {
  const value = args[name];
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw new UsageError(`--${name} takes no value`);
  return value;
}

/** Every publisher and customer id is an int32 > 0 (contract §2, §3), written in plain decimal. */
export function parsePositiveInt32(option: string, raw: string | undefined): number {
  if (raw === undefined || raw === '') throw new UsageError(`${option} is required`);
  const value = /^[1-9][0-9]{0,9}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(value) || value > INT32_MAX) {
    throw new UsageError(`${option} must be an integer from 1 to ${INT32_MAX}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

export function idOption(args: Args, name: string): number {
  return parsePositiveInt32(`--${name}`, optionalString(args, name));
}

export function boundedText(option: string, value: string, max: number): string {
  // Control characters would corrupt the one-line output and logs.
  if (value.length === 0 || value.length > max || /[\x00-\x1F\x7F]/.test(value)) {
    throw new UsageError(`${option} must be 1 to ${max} characters without control characters`);
  }
  return value;
}

export function plainId(option: string, value: string, max: number): string {
  if (value.length === 0 || value.length > max || !PLAIN_ID.test(value)) {
    throw new UsageError(`${option} must be 1 to ${max} visible ASCII characters (no spaces)`);
  }
  return value;
}

export function oneOf<T extends string>(option: string, value: string, allowed: readonly T[]): T {
  const found = allowed.find((candidate) => candidate === value);
  if (found === undefined) throw new UsageError(`${option} must be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`);
  return found;
}
