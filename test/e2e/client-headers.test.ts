import { runCli } from '../../cli/main';
import { startTestStack, type LocalClient } from '../support/local-client';

let env: Awaited<ReturnType<typeof startTestStack>>;
let api: LocalClient;

beforeAll(async () => {
  env = await startTestStack();
  api = env.client;
});
afterAll(async () => env?.stop());

/** What `iap-sync sync show <id> --publisher 1` prints against the running local stack. */
async function syncShowPrints(synchronizationId: string): Promise<Record<string, unknown>> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(['sync', 'show', synchronizationId, '--publisher', '1', '--data-dir', env.dataDir], {
    stdout: (text) => out.push(text),
    stderr: (text) => err.push(text),
  });
  expect({ code, err }).toEqual({ code: 0, err: [] });
  return JSON.parse(out.join('')) as Record<string, unknown>;
}

describe('client headers, end to end on the local stack', () => {
  it('a register keeps X-App-Version, X-Device-Id, X-Device-Type and X-User-Action on its synchronization, and `sync show` prints them', async () => {
    const { transactionId } = await api.createTransaction({ productId: 'premium_monthly' });
    const headers = {
      'x-app-version': '5.2.0 (build 812)',
      'x-device-id': '6F9619FF-8B86-D011-B42D-00C04FC964FF',
      'x-device-type': 'iPhone15,3',
      'x-user-action': 'restore',
    };
    const accepted = await api.register({ cleengCustomerId: 101, transactionId, ipAddress: '203.0.113.7' }, api.publisherHeaders(headers));
    expect(accepted.status).toBe(202);
    const id = String(accepted.body.synchronizationId);
    const { final } = await api.waitFinalized(id);
    expect(final).toMatchObject({ result: 'PURCHASE_SYNCHRONIZED' });

    const shown = await syncShowPrints(id);
    expect(shown).toMatchObject({
      synchronizationId: id,
      status: 'finalized',
      client: { appVersion: '5.2.0 (build 812)', deviceId: '6F9619FF-8B86-D011-B42D-00C04FC964FF', deviceType: 'iPhone15,3', userAction: 'restore' },
    });
    // The status route does not carry them (contract: they are kept for support, not echoed).
    expect(final).not.toHaveProperty('client');
  });

  it('a register without them shows no client block', async () => {
    const { synchronizationId } = await api.registerAndWait({ productId: 'premium_monthly' });
    const shown = await syncShowPrints(synchronizationId);
    expect(shown).toMatchObject({ synchronizationId, status: 'finalized' });
    expect(shown).not.toHaveProperty('client');
  });
});
