import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import {
  addPublisher,
  addWebhookEndpoint,
  dataDirOf,
  field,
  postJson,
  registerBody,
  registerPath,
  tableClient,
  createPurchase,
  customerCredential,
  publisherCredential,
  register,
  send,
  statusPath,
  waitFinalized,
  type Credential,
  type Store,
} from './harness';
import { reconcile } from './reconcile';
import { check, eventsAsPublished, settle, startScenarioStack, tally, type Scenario } from './scenario';

interface OwnedSync {
  id: string;
  store: Store;
  publisherId: number;
  customerId: number;
  key: string;
}

const owns = (credential: Credential, sync: OwnedSync) =>
  credential.publisherId === sync.publisherId && (credential.customerId === undefined || credential.customerId === sync.customerId);

/**
 * BOLA matrix: two publishers, two customers each (customer 101 exists in both: a JWT of P2/101
 * must not read P1/101's purchases), an Apple and a Google synchronization per customer, registered
 * with the customer's own JWT. Every credential reads every synchronization through both status
 * routes: the owner's reads through the synchronization's own route answer 200 (the check can
 * fail), every other answers 404 byte-identical to an unknown id.
 */
export const bola: Scenario = async ({ log }) => {
  const s = await startScenarioStack();
  try {
    const { stack } = s.bench;
    const url = stack.url;
    const p1 = stack.localJson;
    const p2 = await addPublisher(stack, 2, [101, 202]);
    // Publisher 2's results go to the same receiver, through its own endpoint and secret.
    s.receiver.setSecret((await addWebhookEndpoint(tableClient(stack), join(dataDirOf(stack), 'secrets'), 2, s.receiver.url)).secret);
    const credentials: Credential[] = [
      publisherCredential(1, p1.publisherToken),
      customerCredential(1, 101, p1.customerJwts['101'] ?? ''),
      customerCredential(1, 102, p1.customerJwts['102'] ?? ''),
      publisherCredential(2, p2.token),
      customerCredential(2, 101, p2.jwts[101] ?? ''),
      customerCredential(2, 202, p2.jwts[202] ?? ''),
    ];
    const syncs: OwnedSync[] = [];
    let registers = 0;
    for (const credential of credentials.filter((c) => c.customerId !== undefined)) {
      for (const store of ['apple', 'google'] as Store[]) {
        const purchase = await createPurchase(url, store);
        const outcome = await register(url, purchase, credential.customerId ?? 0, credential, { packageName: s.packageName });
        registers += 1;
        if (!outcome.synchronizationId) throw new Error(`${credential.label} register of ${store} answered ${outcome.status} ${outcome.code ?? ''}`);
        syncs.push({ id: outcome.synchronizationId, store, publisherId: credential.publisherId, customerId: credential.customerId ?? 0, key: purchase.key });
      }
    }
    const statuses: Record<string, Awaited<ReturnType<typeof waitFinalized>>[string]> = {};
    for (const p of [1, 2]) {
      const owner = credentials.find((c) => c.publisherId === p && c.customerId === undefined);
      if (owner) Object.assign(statuses, await waitFinalized(url, syncs.filter((x) => x.publisherId === p), owner, Date.now() + 60_000));
    }
    log(`${syncs.length} synchronizations of 2 publishers × 2 customers; reading each with ${credentials.length} credentials on both routes`);

    const matrix: { credential: string; sync: string; route: Store; expected: string; got: number; identical: boolean; pass: boolean }[] = [];
    for (const credential of credentials) {
      const unknown: Record<Store, string> = {
        apple: (await send(`${url}${statusPath('apple', randomUUID())}`, { headers: credential.headers })).text,
        google: (await send(`${url}${statusPath('google', randomUUID())}`, { headers: credential.headers })).text,
      };
      for (const sync of syncs) {
        for (const route of ['apple', 'google'] as Store[]) {
          const reply = await send(`${url}${statusPath(route, sync.id)}`, { headers: credential.headers });
          const label = `P${sync.publisherId}/C${sync.customerId} ${sync.store}`;
          if (owns(credential, sync) && route === sync.store) {
            matrix.push({ credential: credential.label, sync: label, route, expected: '200', got: reply.status, identical: false, pass: reply.status === 200 });
          } else if (owns(credential, sync)) {
            // The owner through the other store's route: the contract does not say; recorded, not judged.
            matrix.push({ credential: credential.label, sync: label, route, expected: 'owner, other route', got: reply.status, identical: reply.text === unknown[route], pass: reply.status < 500 });
          } else {
            const identical = reply.text === unknown[route];
            matrix.push({ credential: credential.label, sync: label, route, expected: '404', got: reply.status, identical, pass: reply.status === 404 && identical });
          }
        }
      }
    }
    // The same foreign reads while claiming the owner's publisher in X-Publisher-Id: must not verify.
    const spoofed: { credential: string; sync: string; got: number; pass: boolean }[] = [];
    for (const credential of credentials) {
      for (const sync of syncs.filter((x) => x.publisherId !== credential.publisherId)) {
        const headers = { ...credential.headers, 'x-publisher-id': String(sync.publisherId) };
        const reply = await send(`${url}${statusPath(sync.store, sync.id)}`, { headers });
        spoofed.push({ credential: credential.label, sync: `P${sync.publisherId}/C${sync.customerId} ${sync.store}`, got: reply.status, pass: reply.status === 401 || reply.status === 404 });
      }
    }
    const takeovers = await takeoverAttempts(url, credentials, syncs);
    log(`${takeovers.length} takeover attempts: ${JSON.stringify(tally(takeovers.map((t) => `${t.got} ${t.code ?? ''}`.trim())))}`);
    const probes = await correlationProbes(url, credentials);
    const settled = await settle(s);
    const reconciliation = reconcile({
      accepted: syncs.map((x) => ({ synchronizationId: x.id, key: x.key, expectedResults: ['PURCHASE_SYNCHRONIZED'] })),
      statuses,
      events: eventsAsPublished(settled.events),
      deliveries: s.receiver.received,
    });
    const owner = matrix.filter((m) => m.expected === '200');
    const foreign = matrix.filter((m) => m.expected === '404');
    const failures = [...matrix.filter((m) => !m.pass), ...spoofed.filter((m) => !m.pass), ...takeovers.filter((t) => !t.pass), ...probes.filter((p) => !p.pass)];
    return {
      title: `BOLA matrix: ${credentials.length} credentials × ${syncs.length} synchronizations × 2 status routes (+ spoofed X-Publisher-Id)`,
      requests: registers + matrix.length + spoofed.length + credentials.length * 2 + takeovers.length + probes.length * 2,
      accepted: reconciliation.accepted,
      reconciliation,
      checks: [
        check("owner's reads answer 200", owner.every((m) => m.pass), `${owner.filter((m) => m.pass).length}/${owner.length}`),
        check('every foreign read answers 404 byte-identical to an unknown id', foreign.every((m) => m.pass), `${foreign.filter((m) => m.pass).length}/${foreign.length}`),
        check("foreign reads claiming the owner's X-Publisher-Id are refused (401/404)", spoofed.every((m) => m.pass), `${spoofed.filter((m) => m.pass).length}/${spoofed.length}`),
        check(
          "0 takeovers: a customer JWT transferring another customer's Apple purchase with the transaction id alone, a foreign JWS, a forged JWS or a JWS of its own renewal is 403 AUTH0004",
          takeovers.every((t) => t.pass),
          `${takeovers.filter((t) => t.pass).length}/${takeovers.length} refused, ${takeovers.filter((t) => t.got === 202).length} accepted`,
        ),
        check(
          "a Correlation-Id UUID another publisher used answers like a fresh one (202, its own id, the same shape)",
          probes.every((p) => p.pass),
          `${probes.filter((p) => p.pass).length}/${probes.length}`,
        ),
        check('every webhook signature verifies (each publisher signs with its own endpoint secret)', s.receiver.attempts.every((a) => a.signatureValid), `${s.receiver.attempts.filter((a) => !a.signatureValid).length} invalid of ${s.receiver.attempts.length}`),
      ],
      details: {
        foreignAnswers: tally(foreign.map((m) => `${m.got}${m.identical ? ' identical' : ' DIFFERENT'}`)),
        ownerOtherRoute: tally(matrix.filter((m) => m.expected === 'owner, other route').map((m) => `${m.got}${m.identical ? ' identical to unknown' : ''}`)),
        spoofedAnswers: tally(spoofed.map((m) => String(m.got))),
        takeoverAnswers: tally(takeovers.map((t) => `${t.attempt}: ${t.got} ${t.code ?? ''}`.trim())),
        failures: failures.slice(0, 20),
      },
    };
  } finally {
    await s.stop();
  }
};

interface Takeover {
  attacker: string;
  victim: string;
  attempt: 'transaction id alone' | 'foreign JWS' | 'forged JWS' | 'JWS of its own renewal';
  got: number;
  code?: string;
  pass: boolean;
}

/** The JWS with its payload's `transactionId` replaced and the signature kept: what an attacker can forge without Apple's key. */
function forged(jws: string, transactionId: string): string {
  const [header, payload, signature] = jws.split('.');
  const claims = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
  const tampered = Buffer.from(JSON.stringify({ ...claims, transactionId, originalTransactionId: transactionId })).toString('base64url');
  return `${header}.${tampered}.${signature}`;
}

/**
 * Contract §5, proof of possession: every customer JWT tries to take every Apple purchase of another
 * customer of its publisher by transfer, with the transaction id alone, with the JWS of a purchase of
 * its own (foreign to the victim's), with that JWS's payload rewritten to name the victim's
 * transaction (forged), and with the JWS of a renewal of its own subscription. Every one must be
 * 403 AUTH0004; a 202 is a takeover.
 */
async function takeoverAttempts(url: string, credentials: Credential[], syncs: OwnedSync[]): Promise<Takeover[]> {
  const out: Takeover[] = [];
  for (const attacker of credentials.filter((c) => c.customerId !== undefined)) {
    const bought = await postJson(`${url}/__simulator/apple/transactions`, { productId: 'premium_monthly', environment: 'Production' });
    const ownJws = field(bought.json, 'signedTransactionInfo') ?? '';
    const ownId = field(bought.json, 'transactionId') ?? '';
    const renewed = await postJson(`${url}/__simulator/apple/transactions/${ownId}/renew`, {});
    const renewalJws = field(renewed.json, 'signedTransactionInfo') ?? '';
    if (!ownJws || !renewalJws) throw new Error(`the simulator gave no signedTransactionInfo (${bought.status}, ${renewed.status})`);
    for (const victim of syncs.filter((x) => x.store === 'apple' && x.publisherId === attacker.publisherId && x.customerId !== attacker.customerId)) {
      const transactionId = victim.key.replace(/^apple:/, '');
      const attempts: [Takeover['attempt'], string | undefined][] = [
        ['transaction id alone', undefined],
        ['foreign JWS', ownJws],
        ['forged JWS', forged(ownJws, transactionId)],
        ['JWS of its own renewal', renewalJws],
      ];
      for (const [attempt, jws] of attempts) {
        const body = { cleengCustomerId: attacker.customerId, transactionId, ...(jws !== undefined ? { signedTransactionInfo: jws } : {}) };
        const reply = await postJson(`${url}/storekit2/purchases/transfers`, body, attacker.headers);
        const code = field(reply.json, 'code');
        out.push({
          attacker: attacker.label,
          victim: `P${victim.publisherId}/C${victim.customerId}`,
          attempt,
          got: reply.status,
          ...(code !== undefined ? { code } : {}),
          pass: reply.status === 403 && code === 'AUTH0004',
        });
      }
    }
  }
  return out;
}

/**
 * Contract §5, Correlation-Id keys per publisher: each publisher token registers a purchase under a
 * UUID Correlation-Id another publisher used first, and under a fresh UUID. Both must answer 202
 * with the UUID as the synchronizationId and the same set of fields: the used one reveals nothing.
 */
async function correlationProbes(url: string, credentials: Credential[]): Promise<{ publisher: number; pass: boolean; used: number; fresh: number }[]> {
  const tokens = credentials.filter((c) => c.customerId === undefined);
  const out: { publisher: number; pass: boolean; used: number; fresh: number }[] = [];
  for (const [index, prober] of tokens.entries()) {
    const first = tokens[(index + 1) % tokens.length];
    if (!first || first === prober) continue;
    const taken = randomUUID();
    const register = async (credential: Credential, correlationId: string) => {
      const purchase = await createPurchase(url, 'apple');
      return postJson(`${url}${registerPath('apple')}`, registerBody(purchase, 101, ''), { ...credential.headers, 'correlation-id': correlationId });
    };
    await register(first, taken);
    const fresh = randomUUID();
    const [used, unused] = [await register(prober, taken), await register(prober, fresh)];
    const keys = (reply: { json: unknown }) => Object.keys((reply.json ?? {}) as object).sort().join(',');
    out.push({
      publisher: prober.publisherId,
      used: used.status,
      fresh: unused.status,
      pass: used.status === 202 && unused.status === 202 && field(used.json, 'synchronizationId') === taken && field(unused.json, 'synchronizationId') === fresh && keys(used) === keys(unused),
    });
  }
  return out;
}
