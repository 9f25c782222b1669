import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createDocumentClient } from '../../../lambdas/platform/dynamodb-client';
import { ReferenceSecretStore } from '../../../lambdas/platform/reference-secret-store';
import { DynamoDbWebhookEndpointRepository } from '../../../lambdas/webhooks/adapters/dynamodb-webhook-repository';
import { retiredSecretRefs } from '../../../lambdas/webhooks/domain/deliver-webhooks';
import { startDynamoDbLocal, type DynamoDbLocal } from '../../../local/dynamodb-local';

const TABLE = 'webhook-secret-retirement-test';
const PUBLISHER = 3;
const T0 = Date.parse('2026-11-23T10:00:00.000Z');
const HOUR = 3_600_000;
let dynamodb: DynamoDbLocal;
let endpoints: DynamoDbWebhookEndpointRepository;

beforeAll(async () => {
  dynamodb = await startDynamoDbLocal({ tableName: TABLE });
  endpoints = new DynamoDbWebhookEndpointRepository(createDocumentClient(dynamodb.client), TABLE);
}, 90_000);
afterAll(async () => dynamodb?.stop());

async function endpoint(endpointId: string) {
  await endpoints.put({
    publisherId: PUBLISHER,
    endpointId,
    url: 'https://hooks.example.com/in',
    topics: ['inappPurchaseSyncResult'],
    enabled: true,
    secretRef: 'file:first',
    createdAt: new Date(T0).toISOString(),
    updatedAt: new Date(T0).toISOString(),
  });
}

async function stored(endpointId: string) {
  const found = await endpoints.get(PUBLISHER, endpointId);
  if (!found) throw new Error(`no endpoint ${endpointId}`);
  return found;
}

describe('rotated-out webhook secrets in the table', () => {
  it('an expired previous secret is retired, then forgotten; the current one is never retired', async () => {
    await endpoint('ep_expired');
    await endpoints.rotateSecret(PUBLISHER, 'ep_expired', 'file:second', new Date(T0 + 24 * HOUR), new Date(T0));
    expect(retiredSecretRefs(await stored('ep_expired'), T0 + HOUR)).toEqual([]);
    const later = T0 + 25 * HOUR;
    expect(retiredSecretRefs(await stored('ep_expired'), later)).toEqual(['file:first']);

    await endpoints.forgetRetiredSecrets(PUBLISHER, 'ep_expired', ['file:first'], new Date(later));
    const after = await stored('ep_expired');
    expect(after).toMatchObject({ secretRef: 'file:second' });
    expect(after.previousSecretRef).toBeUndefined();
    expect(after.previousSecretActiveUntil).toBeUndefined();
    expect(retiredSecretRefs(after, later)).toEqual([]);
  });

  it('a second rotation within the window keeps the dropped secret as retired (a string set), until forgotten', async () => {
    await endpoint('ep_twice');
    await endpoints.rotateSecret(PUBLISHER, 'ep_twice', 'file:second', new Date(T0 + 24 * HOUR), new Date(T0));
    await endpoints.rotateSecret(PUBLISHER, 'ep_twice', 'file:third', new Date(T0 + 25 * HOUR), new Date(T0 + HOUR));
    const twice = await stored('ep_twice');
    expect(twice).toMatchObject({ secretRef: 'file:third', previousSecretRef: 'file:second', retiredSecretRefs: ['file:first'] });
    expect(retiredSecretRefs(twice, T0 + 2 * HOUR)).toEqual(['file:first']);

    await endpoints.forgetRetiredSecrets(PUBLISHER, 'ep_twice', ['file:first'], new Date(T0 + 2 * HOUR));
    const after = await stored('ep_twice');
    expect(after.retiredSecretRefs).toBeUndefined();
    // The previous secret still signs: forgetting another ref leaves it.
    expect(after).toMatchObject({ previousSecretRef: 'file:second' });
  });

  it('a rotation between the read and the forget is kept: only what was deleted goes', async () => {
    await endpoint('ep_race');
    await endpoints.rotateSecret(PUBLISHER, 'ep_race', 'file:second', new Date(T0 + 24 * HOUR), new Date(T0));
    const later = T0 + 25 * HOUR;
    const seen = retiredSecretRefs(await stored('ep_race'), later);
    // Meanwhile: another rotation makes file:second the previous secret and file:first a retired one.
    await endpoints.rotateSecret(PUBLISHER, 'ep_race', 'file:third', new Date(later + 24 * HOUR), new Date(later));
    await endpoints.forgetRetiredSecrets(PUBLISHER, 'ep_race', seen, new Date(later));
    const after = await stored('ep_race');
    expect(after).toMatchObject({ secretRef: 'file:third', previousSecretRef: 'file:second' });
    expect(after.retiredSecretRefs).toBeUndefined();
  });

  it('forgetting on an endpoint that is gone creates nothing', async () => {
    await endpoints.forgetRetiredSecrets(PUBLISHER, 'ep_missing', ['file:x'], new Date(T0));
    expect(await endpoints.get(PUBLISHER, 'ep_missing')).toBeUndefined();
  });
});

describe('ReferenceSecretStore.delete', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'iap-sync-secrets-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('removes a local secret file; one already gone counts as deleted; the cache forgets it', async () => {
    writeFileSync(path.join(dir, 'webhook-secret-1'), 'whsec_x');
    const store = new ReferenceSecretStore({ localDir: dir, cacheSeconds: 300 });
    expect(await store.get('file:webhook-secret-1')).toBe('whsec_x');
    await store.delete('file:webhook-secret-1');
    expect(existsSync(path.join(dir, 'webhook-secret-1'))).toBe(false);
    await expect(store.get('file:webhook-secret-1')).rejects.toThrow(/ENOENT/);
    await expect(store.delete('file:webhook-secret-1')).resolves.toBeUndefined();
  });

  it('never deletes outside the secrets folder', async () => {
    const store = new ReferenceSecretStore({ localDir: dir, cacheSeconds: 0 });
    await expect(store.delete('file:../outside')).rejects.toThrow(/escapes the secrets folder/);
  });
});
