import type { IncomingMessage, ServerResponse } from 'node:http';
import { isAppleStoreApiPath } from './simulator/apple-simulator';
import { isGoogleStoreApiPath } from './simulator/google-simulator';
import { sendJson } from './simulator/http-json';

/*
 * The store simulators (`/__simulator`) and the inspection routes (`/__local`) serve the developer's
 * own machine: they inject faults, replay webhooks and list every tenant's events, purchase tokens
 * included. Binding to 127.0.0.1 does not keep a web page the developer visits away from them:
 * - a cross-site `fetch` or form POST with a "simple" content type (text/plain, a form) needs no
 *   CORS preflight, so it reaches a control route; `application/json` needs one, and nothing here
 *   answers preflights, so requiring it keeps those pages out;
 * - DNS rebinding (a name of the attacker's that now resolves to 127.0.0.1) makes the page
 *   same-origin with this server, so it can read the answers; its requests still carry the
 *   attacker's name in `Host`, so only loopback names are served.
 */

const LOCAL_ONLY_PATH = /^\/__(?:simulator|local)(?:\/|$)/;
// Any port: the stack's own clients name the port they were given, a developer may use another.
const LOOPBACK_HOST = /^(?:localhost|127\.0\.0\.1|\[::1\])(?::\d{1,5})?$/i;
const JSON_MEDIA_TYPE = /^application\/json\s*(?:;|$)/i;

/** The paths only the developer's machine may use: `/__simulator/…` and `/__local/…`. */
export function isLocalOnlyPath(pathname: string): boolean {
  return LOCAL_ONLY_PATH.test(pathname);
}

/** `localhost`, `127.0.0.1` or `[::1]`, with or without a port; a missing Host is not one. */
export function isLoopbackHost(host: string | undefined): boolean {
  return host !== undefined && LOOPBACK_HOST.test(host.trim());
}

/** `application/json`, parameters (`; charset=utf-8`) allowed. */
export function isJsonContentType(contentType: string | undefined): boolean {
  return contentType !== undefined && JSON_MEDIA_TYPE.test(contentType.trim());
}

/**
 * Refuses a request to a local-only path that a web page could have sent: `403` when `Host` is
 * not a loopback name, `415` for a POST to a control or inspection route without
 * `Content-Type: application/json` (an empty body with that type is fine). The store API
 * stand-ins keep the content types their real clients send (Google's OAuth token endpoint takes
 * a form). Answers true when it answered.
 */
export function refuseLocalOnlyRequest(req: IncomingMessage, res: ServerResponse, url: URL): boolean {
  // Each family's error key: the simulators answer `error`, the inspection routes `message`.
  const key = url.pathname.startsWith('/__local') ? 'message' : 'error';
  if (!isLoopbackHost(req.headers.host)) {
    sendJson(res, 403, { [key]: 'local routes answer only requests addressed to localhost, 127.0.0.1 or [::1]' });
    return true;
  }
  const storeApi = isAppleStoreApiPath(url.pathname) || isGoogleStoreApiPath(url.pathname);
  if (req.method === 'POST' && !storeApi && !isJsonContentType(req.headers['content-type'])) {
    sendJson(res, 415, { [key]: 'Content-Type must be application/json' });
    return true;
  }
  return false;
}
