import { jwtVerify } from 'jose';
import * as z from 'zod';
import type { Publisher } from '../domain/publisher';
import type { CustomerClaims, CustomerTokenVerifier } from '../ports/credential-verifier';
import type { SecretStore } from '../ports/secret-store';
import { positiveInt32 } from '../schemas/api';

const Claims = z.object({ customerId: positiveInt32, publisherId: positiveInt32 });

/** Contract §5: `nbf`/`iat` honoured with at most 60 s of clock skew. */
const CLOCK_TOLERANCE_SECONDS = 60;

/**
 * Customer JWTs signed by the publisher's identity system, verified with `jose`: algorithm pinned
 * to HS256 (so `none` or an RS256 token keyed with the secret never verifies), `exp` required,
 * `iss`/`aud` checked when configured.
 */
export class JoseCustomerTokenVerifier implements CustomerTokenVerifier {
  constructor(
    private readonly secrets: SecretStore,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async verify(publisher: Publisher, token: string): Promise<CustomerClaims | undefined> {
    const ref = publisher.jwt.hs256SecretRef;
    if (!ref) return undefined;
    const secret = new TextEncoder().encode(await this.secrets.get(ref));
    try {
      const { payload } = await jwtVerify(token, secret, {
        algorithms: ['HS256'],
        requiredClaims: ['exp'],
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        currentDate: this.now(),
        ...(publisher.jwt.issuer ? { issuer: publisher.jwt.issuer } : {}),
        ...(publisher.jwt.audience ? { audience: publisher.jwt.audience } : {}),
      });
      // jose checks `iat` only against a maximum age; a token issued in the future is refused here.
      if (typeof payload.iat === 'number' && payload.iat > this.now().getTime() / 1000 + CLOCK_TOLERANCE_SECONDS) {
        return undefined;
      }
      const claims = Claims.safeParse(payload);
      return claims.success ? claims.data : undefined;
    } catch {
      return undefined;
    }
  }
}
