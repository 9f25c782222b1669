import { AppStoreServerAPIClient, Environment } from '@apple/app-store-server-library';
import type { AppleConfig, AppleEnvironment } from '../config';
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

const ENVIRONMENT: Record<AppleEnvironment, Environment.PRODUCTION | Environment.SANDBOX> = {
  Production: Environment.PRODUCTION,
  Sandbox: Environment.SANDBOX,
};

/**
 * One AppStoreClient per app, key and environment, built once per container (the client caches its
 * signed bearer token). Keyed on the key's length too, so a rotated key gets a new client.
 */
export class AppStoreClients {
  private readonly clients = new Map<string, AppStoreClient>();

  constructor(private readonly options: { baseUrls: Record<AppleEnvironment, string>; timeoutMs: number }) {}

  get(config: AppleConfig, environment: AppleEnvironment, privateKey: string): AppStoreClient {
    const cacheKey = [config.bundleId, config.issuerId, config.keyId, environment, privateKey.length].join('|');
    let client = this.clients.get(cacheKey);
    if (!client) {
      client = new AppStoreClient(
        privateKey,
        config.keyId,
        config.issuerId,
        config.bundleId,
        ENVIRONMENT[environment],
        this.options.baseUrls[environment],
        this.options.timeoutMs,
      );
      this.clients.set(cacheKey, client);
    }
    return client;
  }
}
