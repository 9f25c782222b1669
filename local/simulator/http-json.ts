import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import type { z } from 'zod';

/** Control and store bodies are small JSON documents; anything bigger is a mistake, not data. */
export const MAX_JSON_BODY_BYTES = 64 * 1024;

/** A request body the simulator cannot use; `status` is the HTTP answer (400 or 413). */
export class RequestBodyError extends Error {
  override readonly name = 'RequestBodyError';

  constructor(
    message: string,
    readonly status: 400 | 413,
  ) {
    super(message);
  }
}

/**
 * The client went away before its request body was complete (a cancelled upload): nobody is left
 * to answer, so servers drop the request with one log line, not a stack trace.
 */
export class RequestAbortedError extends Error {
  override readonly name = 'RequestAbortedError';
}

/**
 * Reads a request body; answers `undefined` when it is larger than `limitBytes`. Over the limit the
 * rest is drained, not destroyed, so a 413 can still be written on the same socket. Rejects with
 * {@link RequestAbortedError} when the client closes the connection before the body ends.
 */
export function readBody(req: IncomingMessage, limitBytes: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const aborted = () => reject(new RequestAbortedError('the client closed the connection before the request body ended'));
    // Gone before we listened (the handler awaited something first): no event will come.
    if (req.destroyed && !req.complete) return aborted();
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limitBytes) chunks.push(chunk);
    });
    req.on('error', aborted);
    // 'close' without 'end' (no 'error' is emitted when nobody listened early enough): settles either way.
    req.on('close', () => {
      if (!req.complete) aborted();
    });
    req.on('end', () => resolve(size > limitBytes ? undefined : Buffer.concat(chunks)));
  });
}

/**
 * Reads and parses a JSON request body. An empty body reads as `undefined`, so callers decide
 * what "no body" means.
 */
export async function readJsonBody(req: IncomingMessage, limitBytes = MAX_JSON_BODY_BYTES): Promise<unknown> {
  const body = await readBody(req, limitBytes);
  if (body === undefined) throw new RequestBodyError(`body larger than ${limitBytes} bytes`, 413);
  const text = body.toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new RequestBodyError('body is not valid JSON', 400);
  }
}

/** Writes `body` as JSON with `status`. */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** Writes a bodiless answer, as Apple does for 401. */
export function sendEmpty(res: ServerResponse, status: number): void {
  res.writeHead(status, { 'content-length': 0 });
  res.end();
}

/** One readable line for the first problem of a body, e.g. `status: Invalid input`. */
export function describeIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid body';
  const where = issue.path.length > 0 ? issue.path.join('.') : 'body';
  return `${where}: ${issue.message}`;
}

/**
 * Reads a JSON state file: `undefined` when it does not exist, an error when it does not match
 * `schema`. Refusing beats starting afresh: silently replacing a developer's data (or the root
 * the service trusts) would be worse than a clear message.
 */
export async function readJsonFile<T>(file: string, schema: z.ZodType<T>): Promise<T | undefined> {
  const text = await readOptionalFile(file);
  if (text === undefined) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw new Error(`${file} is not a valid simulator file (${describeIssue(parsed.error)}); fix or delete it`);
  return parsed.data;
}

/** Writes a file owner-only, through a rename so a crash never leaves half a file behind. */
export async function writeFileAtomically(file: string, text: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, text, { mode: 0o600 });
  await rename(temporary, file);
}

/** A file's text, or `undefined` when it does not exist; other failures (permissions…) still throw. */
export async function readOptionalFile(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    // Duck-typed: fs errors may come from another realm (Jest's VM), where `instanceof Error` fails.
    if (typeof error === 'object' && error !== null && 'code' in error && error.code === 'ENOENT') return undefined;
    throw error;
  }
}

/** A simulator route's answer: status, optional JSON body and headers. */
export type SimulatorAnswer = { status: number; body?: unknown; headers?: Record<string, string> };

/**
 * Serves a simulator's requests under `prefix`: answers false for other paths, turns bad bodies
 * into 400/413 and anything unexpected into a plain 500 (the stack trace goes to stderr, the
 * developer's console, never into the body). An aborted upload is rethrown: there is no one to answer.
 */
export async function serveUnder(
  prefix: string,
  name: string,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  serve: (route: string) => Promise<SimulatorAnswer>,
): Promise<boolean> {
  if (url.pathname !== prefix && !url.pathname.startsWith(`${prefix}/`)) return false;
  let result: SimulatorAnswer;
  try {
    result = await serve(url.pathname.slice(prefix.length));
  } catch (error) {
    // Nobody to answer: the server that called us logs one line.
    if (error instanceof RequestAbortedError) throw error;
    if (error instanceof RequestBodyError) {
      result = { status: error.status, body: { error: error.message } };
    } else {
      process.stderr.write(`${name} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      result = { status: 500, body: { error: 'simulator error' } };
    }
  }
  for (const [header, value] of Object.entries(result.headers ?? {})) res.setHeader(header, value);
  if (result.body === undefined) sendEmpty(res, result.status);
  else sendJson(res, result.status, result.body);
  return true;
}

/**
 * Saves snapshots of a simulator's state to `file` (nothing when undefined: in-memory runs), one
 * write after another, so an older snapshot never lands after a newer one.
 */
export function serialStateWriter(file: string | undefined): (state: unknown) => Promise<void> {
  let lastWrite: Promise<void> = Promise.resolve();
  return async (state) => {
    if (file === undefined) return;
    const text = JSON.stringify(state, null, 2);
    const write = lastWrite.then(() => writeFileAtomically(file, text));
    lastWrite = write.catch(() => undefined);
    await write;
  };
}
