import { APIException, APIError } from '@apple/app-store-server-library';
import { StoreCredentialsError, StoreRejectedError, StoreUnavailableError } from '../../platform/errors';
import type { SecretStore } from '../../platform/secret-store';
import { AppStoreClients, type AppStoreClient } from './adapters/app-store-client';
import type { AppleConfig, AppleEnvironment } from './config';

/** What the history client needs; the same settings as AppleStoreVerifier's store calls. */
export interface AppleNotificationHistoryOptions {
  secrets: SecretStore;
  /** App Store Server API base URL per environment (Apple's, or the store simulator's locally). */
  baseUrls: Record<AppleEnvironment, string>;
  timeoutMs: number;
}

/** The time span of a history request: notifications Apple signed from `startDate` until before `endDate`. */
export interface HistoryWindow {
  startDate: Date;
  endDate: Date;
}

/**
 * One page of Get Notification History (up to 20 notifications).
 * https://developer.apple.com/documentation/appstoreserverapi/notificationhistoryresponse
 */
export interface NotificationHistoryPage {
  /** Each notification's signedPayload, exactly the JWS Apple POSTs to the notification URL. */
  signedPayloads: string[];
  /** Present when Apple has more for the same window: pass it, with the same window, for the next page. */
  paginationToken?: string;
}

/**
 * Apple refused the pagination token (invalid, 4000014, or expired, 4000017): the window has to be
 * read again from its first page.
 */
export class PaginationTokenRejectedError extends Error {
  override readonly name = 'PaginationTokenRejectedError';
  readonly retryable = false;
}

const PAGINATION_TOKEN_ERRORS = new Set<number>([APIError.INVALID_PAGINATION_TOKEN, APIError.PAGINATION_TOKEN_EXPIRED]);
/** Apple answers that mean "not now" rather than "no", as AppleStoreVerifier reads them. */
const RETRYABLE_API_ERRORS = new Set<number>([APIError.RATE_LIMIT_EXCEEDED, APIError.GENERAL_INTERNAL, APIError.GENERAL_INTERNAL_RETRYABLE]);


/**
 * Apple's Get Notification History through Apple's own client (AppStoreClient: bearer token, paths,
 * response validation), signed with the publisher's App Store Connect key from the SecretStore.
 * https://developer.apple.com/documentation/appstoreserverapi/get-notification-history
 * The signed payloads are returned as they are: verifying them is the notification decoder's job,
 * exactly as for a notification POSTed to the route.
 */
export class AppleNotificationHistoryClient {
  private readonly appStore: AppStoreClients;

  constructor(private readonly options: AppleNotificationHistoryOptions) {
    this.appStore = new AppStoreClients(options);
  }

  /**
   * One page of the publisher's notification history in one environment.
   * @throws StoreUnavailableError when Apple cannot answer now (429, 5xx, network, timeout): try again later.
   * @throws StoreCredentialsError when Apple refuses the publisher's key (401/403).
   * @throws PaginationTokenRejectedError when Apple refuses `paginationToken`.
   * @throws StoreRejectedError for any other refusal of the request (e.g. a start date over 180 days old).
   */
  async page(config: AppleConfig, environment: AppleEnvironment, window: HistoryWindow, paginationToken: string | undefined): Promise<NotificationHistoryPage> {
    const privateKey = await this.options.secrets.get(config.privateKeyRef);
    const client = this.client(config, environment, privateKey);
    let response;
    try {
      // Apple wants the same request body with a pagination token as for the window's first page.
      response = await client.getNotificationHistory(paginationToken ?? null, {
        startDate: window.startDate.getTime(),
        endDate: window.endDate.getTime(),
      });
    } catch (error) {
      throw mapped(error);
    }
    const signedPayloads = (response.notificationHistory ?? []).flatMap((item) => (item.signedPayload ? [item.signedPayload] : []));
    const next = response.hasMore === true && response.paginationToken ? response.paginationToken : undefined;
    return { signedPayloads, ...(next !== undefined ? { paginationToken: next } : {}) };
  }

  private client(config: AppleConfig, environment: AppleEnvironment, privateKey: string): AppStoreClient {
    return this.appStore.get(config, environment, privateKey);
  }
}

/** Apple's failures as the service's store errors: 401/403 → our credentials; 429/5xx/network → retryable. */
function mapped(error: unknown): Error {
  if (error instanceof APIException) {
    const apiError = typeof error.apiError === 'number' ? error.apiError : undefined;
    if (apiError !== undefined && PAGINATION_TOKEN_ERRORS.has(apiError)) {
      return new PaginationTokenRejectedError(`Apple refused the pagination token (${apiError})`);
    }
    if (apiError !== undefined && RETRYABLE_API_ERRORS.has(apiError)) return new StoreUnavailableError(`Apple answered ${error.httpStatusCode} (${apiError})`);
    if (error.httpStatusCode === 401 || error.httpStatusCode === 403) return new StoreCredentialsError(`Apple refused our API key (${error.httpStatusCode})`);
    if (error.httpStatusCode === 429 || error.httpStatusCode >= 500) return new StoreUnavailableError(`Apple answered ${error.httpStatusCode}`);
    return new StoreRejectedError(`Apple rejected the notification history request (${error.httpStatusCode}, ${apiError ?? 'no code'})`);
  }
  // fetch failures (connection refused, DNS, timeout) and malformed answers: Apple may answer later.
  return new StoreUnavailableError(`Apple could not be reached: ${(error as Error).name}`, { cause: error });
}
