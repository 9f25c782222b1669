import { AppStoreServerAPIClient, type Environment } from '@apple/app-store-server-library';
import type { Response } from 'node-fetch';

/**
 * Apple's own App Store Server API client, with its one I/O seam (`makeFetchRequest`) pointed at a
 * configurable base URL and bounded by a timeout. Deployed stacks use Apple's URLs; `npm start`
 * and the tests use the store simulator's. Everything else (bearer token, paths, response
 * validation, APIException) is Apple's code.
 */
export class AppStoreClient extends AppStoreServerAPIClient {
  constructor(
    signingKey: string,
    keyId: string,
    issuerId: string,
    bundleId: string,
    environment: Environment.PRODUCTION | Environment.SANDBOX,
    private readonly baseUrl: string,
    private readonly timeoutMs: number,
  ) {
    super(signingKey, keyId, issuerId, bundleId, environment);
  }

  protected override async makeFetchRequest(
    path: string,
    parsedQueryParameters: URLSearchParams,
    method: string,
    requestBody: string | Buffer | undefined,
    headers: { [key: string]: string },
  ): Promise<Response> {
    const query = parsedQueryParameters.toString();
    const url = this.baseUrl.replace(/\/+$/, '') + path + (query ? `?${query}` : '');
    const response = await fetch(url, {
      method,
      body: requestBody,
      headers,
      redirect: 'error',
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    // Apple's library only reads `ok`, `status` and `json()`, which the WHATWG Response has too.
    return response as unknown as Response;
  }
}
