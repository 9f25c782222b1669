import { createHash, timingSafeEqual } from 'node:crypto';
import { ApiError } from '../../platform/errors';
import type { Publisher } from './publisher';
import type { PublisherRepository } from '../ports/publisher-repository';
import type { CustomerTokenVerifier } from '../ports/credential-verifier';

/** Who is calling: a publisher's server (any customer of its publisher) or one customer. */
export type Caller =
  | { kind: 'publisher'; publisherId: number }
  | { kind: 'customer'; publisherId: number; customerId: number };

export interface Credentials {
  publisherId: number;
  authorization?: string;
  publisherToken?: string;
}

/** The credentials a request carries (contract §2): its publisher, and a customer JWT or a publisher token. */
export function credentialsOf(headers: { 'x-publisher-id': number; authorization?: string; 'x-publisher-token'?: string }): Credentials {
  return {
    publisherId: headers['x-publisher-id'],
    ...(headers.authorization !== undefined ? { authorization: headers.authorization } : {}),
    ...(headers['x-publisher-token'] !== undefined ? { publisherToken: headers['x-publisher-token'] } : {}),
  };
}

export function hashPublisherToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

function sameHash(a: string, b: string): boolean {
  const left = Buffer.from(a, 'hex');
  const right = Buffer.from(b, 'hex');
  return left.length === right.length && left.length > 0 && timingSafeEqual(left, right);
}

/**
 * Contract §5. Missing credentials: AUTH0001; a credential that does not verify (unknown publisher,
 * wrong token, bad JWT): AUTH0002; a valid JWT of another publisher than X-Publisher-Id: AUTH0003.
 */
export async function authenticate(
  deps: { publishers: PublisherRepository; customerTokens: CustomerTokenVerifier },
  credentials: Credentials,
): Promise<{ caller: Caller; publisher: Publisher }> {
  const { authorization, publisherToken, publisherId } = credentials;
  if (authorization === undefined && publisherToken === undefined) throw new ApiError('AUTH0001');
  if (authorization !== undefined && publisherToken !== undefined) {
    throw new ApiError('REQ0004', {}, 'Send either Authorization or X-Publisher-Token, not both.');
  }
  const publisher = await deps.publishers.getPublisher(publisherId);
  if (publisherToken !== undefined) {
    const presented = hashPublisherToken(publisherToken);
    if (!publisher || !sameHash(presented, publisher.tokenHash)) throw new ApiError('AUTH0002');
    return { caller: { kind: 'publisher', publisherId }, publisher };
  }
  const match = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$/.exec(authorization ?? '');
  if (!match?.[1] || !publisher) throw new ApiError('AUTH0002');
  const claims = await deps.customerTokens.verify(publisher, match[1]);
  if (!claims) throw new ApiError('AUTH0002');
  if (claims.publisherId !== publisherId) throw new ApiError('AUTH0003');
  return { caller: { kind: 'customer', publisherId, customerId: claims.customerId }, publisher };
}

/** A customer may act only for itself; a publisher token for any of its customers. */
export function mayActFor(caller: Caller, customerId: number): boolean {
  return caller.kind === 'publisher' || caller.customerId === customerId;
}
