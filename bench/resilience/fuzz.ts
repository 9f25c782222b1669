import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { SignJWT } from 'jose';
import { AcceptedResponse, SynchronizationStatusResponse } from '../../lambdas/purchases/schemas';
import { issueCustomerJwt, JWT_SECRET_FILE } from '../../local/seed';
import { runPool } from '../local';
import { loadContractCodes, CONTRACT_FILE } from './contract-codes';
import { fuzzRequests, type FuzzContext, type FuzzRequest } from './fuzz-requests';
import { createPurchases, dataDirOf, register, send, waitFinalized, type Store } from './harness';
import { reconcile } from './reconcile';
import { check, eventsAsPublished, settle, startScenarioStack, tally, type Scenario } from './scenario';

/** Fixed, so a finding can be replayed: the same seed generates the same 10,000 requests. */
export const FUZZ_SEED = 20261123;

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** Bearer tokens that must all be refused: forged, expired, alg-none, wrong claims, malformed. */
async function badJwts(secret: string, publisherId: number, customerId: number, valid: string): Promise<string[]> {
  const key = new TextEncoder().encode(secret);
  const now = Math.floor(Date.now() / 1000);
  const sign = (claims: Record<string, unknown>, alg = 'HS256', k: Uint8Array = key) => new SignJWT(claims).setProtectedHeader({ alg, typ: 'JWT' }).sign(k);
  const [header, payload, signature] = valid.split('.');
  return [
    await issueCustomerJwt(secret, publisherId, customerId, -3600), // expired an hour ago
    await sign({ customerId, publisherId, exp: now + 3600, nbf: now + 3600 }), // not yet valid
    await sign({ customerId, publisherId, exp: now + 3600, iat: now + 3600 }), // issued in the future
    await sign({ customerId, publisherId }), // no exp
    await sign({ customerId, publisherId, exp: now + 3600 }, 'HS256', new TextEncoder().encode('not-the-publisher-secret-0123456789')), // forged
    await sign({ customerId, publisherId, exp: now + 3600 }, 'HS512'), // algorithm not pinned one
    await sign({ customerId, publisherId: publisherId + 1, exp: now + 3600 }), // other tenant's claim
    await sign({ customerId: String(customerId), publisherId, exp: now + 3600 }),
    await sign({ customerId: -1, publisherId, exp: now + 3600 }),
    await sign({ publisherId, exp: now + 3600 }),
    `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ customerId, publisherId, exp: now + 3600 })}.`,
    `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ customerId, publisherId, exp: now + 3600 })}`,
    `${b64({ alg: 'RS256', typ: 'JWT' })}.${payload}.${signature}`,
    `${header}.${b64({ customerId: customerId + 1, publisherId, exp: now + 3600 })}.${signature}`, // tampered payload
    `${header}.${payload}.${(signature ?? '').slice(0, -4)}`,
    `${header}.${payload}`,
    '..',
    'a.b.c',
    'eyJhbGciOiJIUzI1NiJ9',
    `${header}.${payload}.${signature}.extra`,
    `${header}.${'A'.repeat(7000)}.${signature}`,
  ];
}

interface Judged {
  category: string;
  outcome: string;
  violation?: string;
}

/** Whether one answer is a documented one (contract §4, §6) and carries no internals. */
function judge(req: FuzzRequest, reply: { status: number; headers: Record<string, unknown>; text: string; json: unknown }, codes: Map<string, number>): Judged {
  const base = { category: req.category };
  if (reply.status >= 500) return { ...base, outcome: `${reply.status} ${codeOf(reply.json) ?? ''}`.trim(), violation: '5xx' };
  if (reply.status >= 200 && reply.status < 300) {
    const isStatus = req.method === 'GET' && /\/purchases\/synchronizations\//.test(req.path);
    const ok = isStatus
      ? reply.status === 200 && SynchronizationStatusResponse.safeParse(reply.json).success
      : req.method === 'POST' && req.knownRoute && reply.status === 202 && AcceptedResponse.safeParse(reply.json).success;
    return { ...base, outcome: String(reply.status), ...(ok ? {} : { violation: `undocumented success ${reply.status} ${reply.text.slice(0, 80)}` }) };
  }
  const code = codeOf(reply.json);
  const outcome = `${reply.status} ${code ?? '(no code)'}`;
  if (!code) return { ...base, outcome, violation: `error without a JSON code: ${reply.text.slice(0, 80)}` };
  if (/\bat .*\.(ts|js):\d+|Exception|stack/i.test(reply.text)) return { ...base, outcome, violation: 'internals in the body' };
  if (!String(reply.headers['content-type'] ?? '').includes('application/json')) return { ...base, outcome, violation: 'error body not labelled JSON' };
  const keys = Object.keys(reply.json as Record<string, unknown>);
  if (!keys.every((k) => ['code', 'message', 'synchronizationId'].includes(k))) return { ...base, outcome, violation: `unexpected error fields ${keys.join(',')}` };
  const documented = codes.get(code);
  if (documented === reply.status) return { ...base, outcome };
  if (code === 'REQ0008' && !req.knownRoute && reply.status === 404) return { ...base, outcome: `${outcome} (not in the contract)` };
  return { ...base, outcome, violation: documented === undefined ? `code ${code} not in the contract` : `${code} with ${reply.status}, contract says ${documented}` };
}

function codeOf(json: unknown): string | undefined {
  const code = json !== null && typeof json === 'object' ? (json as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : undefined;
}

/**
 * 10,000 requests generated with fast-check from the zod schemas of the API (valid bodies, then
 * mutated), against the local stack: zero 5xx and every answer a documented success or a code of
 * the contract's table with its status. The accepted ones are reconciled like any scenario.
 */
export const fuzz: Scenario = async ({ quick, log }) => {
  const total = quick ? 1_000 : 10_000;
  const codes = loadContractCodes();
  const s = await startScenarioStack();
  try {
    const { stack, client } = s.bench;
    const url = stack.url;
    const secret = readFileSync(join(dataDirOf(stack), 'secrets', JWT_SECRET_FILE(stack.localJson.publisherId)), 'utf8').trim();
    const jwt = stack.localJson.customerJwts['101'] ?? '';
    const stores: Store[] = Array.from({ length: quick ? 30 : 100 }, (_, i) => (i % 5 === 4 ? 'google' : 'apple'));
    const purchases = await createPurchases(url, stores);
    // A few synchronizations to read, registered normally before the fuzz.
    const seeds = await Promise.all(purchases.slice(0, 5).map((p, i) => register(url, p, client.customerFor(i), s.publisher, { packageName: s.packageName })));
    const ctx: FuzzContext = {
      publisherId: stack.localJson.publisherId,
      publisherToken: stack.localJson.publisherToken,
      jwt,
      jwtCustomerId: 101,
      customerIds: [101, 102, 103, ...client.customerIds.slice(0, 20)],
      appleTransactionIds: purchases.slice(5).filter((p) => p.store === 'apple').map((p) => p.id),
      googlePurchaseTokens: purchases.slice(5).filter((p) => p.store === 'google').map((p) => p.id),
      packageName: s.packageName,
      badJwts: await badJwts(secret, stack.localJson.publisherId, 101, jwt),
      synchronizationIds: seeds.flatMap((o) => (o.synchronizationId ? [o.synchronizationId] : [])),
    };
    const requests = fc.sample(fuzzRequests(ctx), { numRuns: total, seed: FUZZ_SEED });
    log(`${requests.length} generated requests (seed ${FUZZ_SEED}), 16 at a time`);

    const judged: Judged[] = new Array<Judged>(requests.length);
    const accepted: { synchronizationId: string; key: string; store: Store }[] = [];
    const examples = new Map<string, { request: Omit<FuzzRequest, 'body'> & { body?: string }; answer: string }>();
    let notSent = 0;
    const t0 = Date.now();
    await runPool(requests.length, 16, async (i) => {
      const req = requests[i];
      if (!req) return;
      try {
        const reply = await send(`${url}${req.path}`, { method: req.method, headers: req.headers, ...(req.body !== undefined ? { body: req.body } : {}) });
        const j = judge(req, reply, codes);
        judged[i] = j;
        if (j.violation && examples.size < 20 && !examples.has(j.violation)) {
          const { body, ...rest } = req;
          const shown = typeof body === 'string' ? { body: body.slice(0, 300) } : {};
          examples.set(j.violation, { request: { ...rest, ...shown }, answer: `${reply.status} ${reply.text.slice(0, 200)}` });
        }
        if (reply.status === 202) {
          const id = (reply.json as { synchronizationId?: string }).synchronizationId ?? '';
          const store: Store = req.path.startsWith('/google-play') ? 'google' : 'apple';
          accepted.push({ synchronizationId: id, key: `${store}:${id}`, store });
        }
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? '';
        // node:http refuses some header values before sending (a client-side check, not an answer).
        if (code.startsWith('ERR_')) {
          notSent += 1;
          judged[i] = { category: req.category, outcome: `not sent (${code})` };
        } else {
          judged[i] = { category: req.category, outcome: `no answer (${code || String(error)})`, violation: 'no answer' };
        }
      }
      if ((i + 1) % 2000 === 0) log(`${i + 1} sent`);
    });
    const seconds = (Date.now() - t0) / 1000;
    const done = judged.filter(Boolean);
    const violations = done.filter((j) => j.violation);
    log(`${done.length} answered in ${seconds.toFixed(0)} s; ${violations.length} violations; ${accepted.length} accepted, waiting for them`);

    const all = [...accepted, ...seeds.flatMap((o) => (o.synchronizationId ? [{ synchronizationId: o.synchronizationId, key: o.purchase.key, store: o.purchase.store }] : []))];
    const statuses = await waitFinalized(url, all.map((a) => ({ id: a.synchronizationId, store: a.store })), s.publisher, Date.now() + 120_000);
    const settled = await settle(s, 60_000);
    const reconciliation = reconcile({
      accepted: all.map((a) => ({ synchronizationId: a.synchronizationId, key: a.key, expectedResults: [] })),
      statuses,
      events: eventsAsPublished(settled.events),
      deliveries: s.receiver.received,
    });
    const byCategory: Record<string, Record<string, number>> = {};
    for (const j of done) {
      const row = (byCategory[j.category] ??= {});
      row[j.outcome] = (row[j.outcome] ?? 0) + 1;
    }
    const fivexx = done.filter((j) => j.violation === '5xx').length;
    return {
      title: `fuzz: ${requests.length} requests generated with fast-check from the zod schemas (seed ${FUZZ_SEED})`,
      requests: requests.length,
      accepted: reconciliation.accepted,
      reconciliation,
      checks: [
        check('zero 5xx', fivexx === 0, `${fivexx} answers ≥ 500`),
        check('every answer a documented success or a contract code with its status', violations.length === 0, `${violations.length} violations: ${JSON.stringify(tally(violations.map((v) => v.violation ?? '')))}`),
        check('workflows and webhook queue drained', settled.workflowsDrained && settled.webhooksDrained, `workflows ${settled.workflowsDrained}, webhooks ${settled.webhooksDrained}`),
      ],
      details: {
        contract: CONTRACT_FILE,
        requestsPerSecond: Number((done.length / seconds).toFixed(1)),
        notSentByClient: notSent,
        byStatusAndCode: tally(done.map((j) => j.outcome)),
        byCategory,
        violationExamples: [...examples.entries()].map(([violation, e]) => ({ violation, ...e })),
        results: tally(Object.values(statuses).map((st) => st.result ?? st.status ?? String(st.httpStatus))),
      },
    };
  } finally {
    await s.stop();
  }
};
