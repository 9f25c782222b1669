import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import {
  addPublisher,
  addWebhookEndpoint,
  dataDirOf,
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
    const settled = await settle(s);
    const reconciliation = reconcile({
      accepted: syncs.map((x) => ({ synchronizationId: x.id, key: x.key, expectedResults: ['PURCHASE_SYNCHRONIZED'] })),
      statuses,
      events: eventsAsPublished(settled.events),
      deliveries: s.receiver.received,
    });
    const owner = matrix.filter((m) => m.expected === '200');
    const foreign = matrix.filter((m) => m.expected === '404');
    const failures = [...matrix.filter((m) => !m.pass), ...spoofed.filter((m) => !m.pass)];
    return {
      title: `BOLA matrix: ${credentials.length} credentials × ${syncs.length} synchronizations × 2 status routes (+ spoofed X-Publisher-Id)`,
      requests: registers + matrix.length + spoofed.length + credentials.length * 2,
      accepted: reconciliation.accepted,
      reconciliation,
      checks: [
        check("owner's reads answer 200", owner.every((m) => m.pass), `${owner.filter((m) => m.pass).length}/${owner.length}`),
        check('every foreign read answers 404 byte-identical to an unknown id', foreign.every((m) => m.pass), `${foreign.filter((m) => m.pass).length}/${foreign.length}`),
        check("foreign reads claiming the owner's X-Publisher-Id are refused (401/404)", spoofed.every((m) => m.pass), `${spoofed.filter((m) => m.pass).length}/${spoofed.length}`),
        check('every webhook signature verifies (each publisher signs with its own endpoint secret)', s.receiver.attempts.every((a) => a.signatureValid), `${s.receiver.attempts.filter((a) => !a.signatureValid).length} invalid of ${s.receiver.attempts.length}`),
      ],
      details: {
        foreignAnswers: tally(foreign.map((m) => `${m.got}${m.identical ? ' identical' : ' DIFFERENT'}`)),
        ownerOtherRoute: tally(matrix.filter((m) => m.expected === 'owner, other route').map((m) => `${m.got}${m.identical ? ' identical to unknown' : ''}`)),
        spoofedAnswers: tally(spoofed.map((m) => String(m.got))),
        failures: failures.slice(0, 20),
      },
    };
  } finally {
    await s.stop();
  }
};
