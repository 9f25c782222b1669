import { appleTestNotification, parseAppleTestNotification } from '../../cli/commands/apple';
import { CommandError, UsageError } from '../../cli/errors';
import { localTarget, type StackTarget } from '../../cli/target';
import { startTestStack } from '../support/local-client';

// `npx iap-sync apple test-notification`: Apple's Request a Test Notification, answered locally by the
// simulator, whose TEST notification then reaches the notification route and is acknowledged.
let env: Awaited<ReturnType<typeof startTestStack>>;
let target: StackTarget;

beforeAll(async () => {
  env = await startTestStack();
  target = localTarget(env.dataDir);
});
afterAll(async () => {
  target?.close();
  await env?.stop();
});

describe('apple test-notification', () => {
  it('asks the App Store (simulator) for a TEST notification, which the route answers 200', async () => {
    const answer = await appleTestNotification(target, { publisher: '1' });
    expect(answer).toMatchObject({ publisherId: 1, environment: 'Sandbox', testNotificationToken: expect.any(String) });
    const listed = await env.client.request('GET', '/__simulator/notifications?store=apple');
    const notifications = listed.body.notifications as Array<{ type: string; responseStatus: number | null; target: string }>;
    expect(notifications.filter((n) => n.type === 'TEST')).toEqual([
      expect.objectContaining({ responseStatus: 200, target: `${env.stack.url}/storekit2/notifications/1` }),
    ]);
    // A TEST changes nothing: no refresh, no event.
    await env.client.settled();
    expect(env.client.entitlementEvents()).toEqual([]);
  });

  it.each([
    ['an unknown environment', { publisher: '1', environment: 'Moon' }, UsageError],
    ['a missing publisher id', {}, UsageError],
  ])('refuses %s as a usage error', (_name, args, error) => {
    expect(() => parseAppleTestNotification(args)).toThrow(error);
  });

  it('refuses a publisher that does not exist', async () => {
    await expect(appleTestNotification(target, { publisher: '42' })).rejects.toThrow(CommandError);
  });
});
