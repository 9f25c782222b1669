/**
 * Credentials in a webhook endpoint URL (`https://user:password@host/…`). Refused at registration:
 * the URL is stored, listed, logged and sent as it is, so a password in it would be kept and shown
 * in clear; receivers authenticate a delivery by its signature (contract §8). An endpoint stored
 * with one before that rule is never sent to and never shown with it.
 */

/** What a refusal tells the user. */
export const CREDENTIALS_IN_URL_MESSAGE =
  'The endpoint URL must not carry credentials (user:password@): they would be stored and shown in clear. ' +
  "Check the webhook-signature header with the endpoint's signing secret instead, or use an endpoint that needs no credentials in its URL.";

/** Scheme and authority of a URL text: the userinfo, if any, ends at the last `@` before the path. */
const AUTHORITY = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^/?#\\]*)/;

/**
 * True when the URL carries userinfo, even an empty user with a password. A text that does not
 * parse as a URL counts when its authority holds an `@`, so a malformed stored value is not sent
 * or shown either.
 */
export function hasUrlCredentials(url: string): boolean {
  try {
    const parsed = new URL(url);
    return parsed.username !== '' || parsed.password !== '';
  } catch {
    return AUTHORITY.exec(url)?.[2]?.includes('@') ?? false;
  }
}

/** The URL as it may be shown or logged: any userinfo becomes `***` (`https://***@host/path`). */
export function maskUrlCredentials(url: string): string {
  if (!hasUrlCredentials(url)) return url;
  try {
    const parsed = new URL(url);
    parsed.username = '***';
    parsed.password = '';
    return parsed.href;
  } catch {
    return url.replace(AUTHORITY, (_all, scheme: string, authority: string) => `${scheme}***@${authority.slice(authority.lastIndexOf('@') + 1)}`);
  }
}
