import { spawnSync } from 'node:child_process';
import { generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { decodeJwt, jwtVerify } from 'jose';
import { DynamoDbPublisherRepository } from '../../lambdas/tenants/adapters/dynamodb-publisher-repository';
import { DynamoDbSynchronizationRepository } from '../../lambdas/purchases/adapters/dynamodb-synchronization-repository';
import { keys } from '../../lambdas/platform/dynamodb-table';
import { JoseCustomerTokenVerifier } from '../../lambdas/tenants/adapters/jose-customer-token-verifier';
import { ReferenceSecretStore } from '../../lambdas/platform/reference-secret-store';
import { authenticate, hashPublisherToken } from '../../lambdas/tenants/domain/authenticate';
import { ApiError } from '../../lambdas/platform/errors';
import type { Publisher } from '../../lambdas/tenants/domain/publisher';
import type { Synchronization } from '../../lambdas/purchases/domain/synchronization';
import { type Args, parsePositiveInt32 } from '../../cli/args';
import { CommandError, UsageError } from '../../cli/errors';
import { appleConfigure } from '../../cli/commands/apple';
import { customerAdd } from '../../cli/commands/customer';
import { googleConfigure } from '../../cli/commands/google';
import { jwtIssue } from '../../cli/commands/jwt';
import { offerMap } from '../../cli/commands/offer';
import { publisherCreate, publisherList } from '../../cli/commands/publisher';
import { syncRetry, syncShow } from '../../cli/commands/sync';
import { COMMANDS, runCli } from '../../cli/main';
import { deployedTarget, localTarget, type DeployedIo, type StackTarget } from '../../cli/target';
import { startDynamoDbLocal, type DynamoDbLocal } from '../../local/dynamodb-local';
import { APPLE_KEY_FILE } from '../../local/seed';
import { LOCAL_TABLE_NAME } from '../../local/stack';

const PROJECT_ROOT = path.resolve(__dirname, '../..');
const ISSUER_ID = '57246542-96fe-1a63-e053-0824d011072a';
const KEY_ID = 'ABCDE12345';

let dynamodb: DynamoDbLocal;
let dataDir: string;
let target: StackTarget;
let publishers: DynamoDbPublisherRepository;

function pkcs8(type: 'ec-p256' | 'ec-p384' | 'rsa' | 'ed25519'): string {
  const pem = (key: KeyObject) => key.export({ type: 'pkcs8', format: 'pem' }).toString();
  switch (type) {
    case 'ec-p256':
      return pem(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey);
    case 'ec-p384':
      return pem(generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey);
    case 'rsa':
      return pem(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey);
    case 'ed25519':
      return pem(generateKeyPairSync('ed25519').privateKey);
  }
}

function writeTemp(name: string, content: string): string {
  const file = path.join(dataDir, name);
  writeFileSync(file, content);
  return file;
}

async function rawPublisherItem(publisherId: number): Promise<Record<string, unknown> | undefined> {
  const out = await target.db.send(new GetCommand({ TableName: target.tableName, Key: keys.publisher(publisherId) }));
  return out.Item;
}

async function storedPublisher(publisherId: number): Promise<Publisher> {
  const publisher = await publishers.getPublisher(publisherId);
  if (!publisher) throw new Error(`publisher ${publisherId} missing`);
  return publisher;
}

/** A plain local target that runCli may close without closing the shared one. */
const unclosable = (): StackTarget => ({ ...target, close: () => undefined });

beforeAll(async () => {
  dynamodb = await startDynamoDbLocal({ tableName: LOCAL_TABLE_NAME });
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'iap-sync-cli-'));
  writeFileSync(path.join(dataDir, 'runtime.json'), JSON.stringify({ dynamodbEndpoint: dynamodb.endpoint, tableName: LOCAL_TABLE_NAME }));
  writeFileSync(path.join(dataDir, 'local.json'), JSON.stringify({ apiUrl: 'http://127.0.0.1:3999', publisherId: 1 }));
  target = localTarget(dataDir);
  publishers = new DynamoDbPublisherRepository(target.db, target.tableName);
}, 90_000);

afterAll(async () => {
  target?.close();
  await dynamodb?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('local target', () => {
  it('reads the endpoint and table from runtime.json and the API URL from local.json', () => {
    expect(target.kind).toBe('local');
    expect(target.tableName).toBe(LOCAL_TABLE_NAME);
    expect(target.apiUrl).toBe('http://127.0.0.1:3999');
    expect(target.secretsDir).toBe(path.join(dataDir, 'secrets'));
  });

  it('refuses a data dir without runtime.json with a hint to start the stack', () => {
    const empty = mkdtempSync(path.join(os.tmpdir(), 'iap-sync-cli-empty-'));
    try {
      expect(() => localTarget(empty)).toThrow(CommandError);
      expect(() => localTarget(empty)).toThrow(/runtime\.json is missing.*npm start/);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});

describe('publisher create', () => {
  let token: string;

  beforeAll(async () => {
    const created = await publisherCreate(target, {
      id: '7',
      name: 'Acme Media',
      'storekit-activated': true,
      'ownership-policy': 'transfer',
      'jwt-issuer': 'https://id.acme.example',
    });
    expect(created.publisherId).toBe(7);
    token = created.publisherToken;
  });

  it('prints an opaque pt_ token of 24 random bytes', () => {
    expect(token).toMatch(/^pt_[A-Za-z0-9_-]{32}$/);
  });

  it('stores only the SHA-256 of the token, never the token itself', async () => {
    const item = await rawPublisherItem(7);
    expect(item).toBeDefined();
    const json = JSON.stringify(item);
    expect(json).not.toContain(token);
    expect(json).not.toContain(token.slice(3));
    const publisher = item?.publisher as Publisher;
    expect(publisher.tokenHash).toBe(hashPublisherToken(token));
    expect(publisher.tokenHash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('stores the settings and an HS256 secret as a 0600 file referenced from the publisher', async () => {
    const publisher = await storedPublisher(7);
    expect(publisher).toMatchObject({
      publisherId: 7,
      name: 'Acme Media',
      ownershipPolicy: 'transfer',
      storeKit: { activated: true, migrationInProgress: false },
      jwt: { hs256SecretRef: 'file:jwt-hs256-publisher-7', issuer: 'https://id.acme.example' },
    });
    expect(publisher.apple).toBeUndefined();
    const secretFile = path.join(dataDir, 'secrets', 'jwt-hs256-publisher-7');
    const secret = readFileSync(secretFile, 'utf8');
    expect(Buffer.from(secret, 'base64url')).toHaveLength(32);
    expect(statSync(secretFile).mode & 0o777).toBe(0o600);
    expect(JSON.stringify(await rawPublisherItem(7))).not.toContain(secret);
  });

  it('gives a token the API accepts for this publisher only', async () => {
    const deps = { publishers, customerTokens: { verify: async () => undefined } };
    const { caller } = await authenticate(deps, { publisherId: 7, publisherToken: token });
    expect(caller).toEqual({ kind: 'publisher', publisherId: 7 });
    await expect(authenticate(deps, { publisherId: 7, publisherToken: `${token}x` })).rejects.toMatchObject({ code: 'AUTH0002' });
    await expect(authenticate(deps, { publisherId: 8, publisherToken: token })).rejects.toBeInstanceOf(ApiError);
  });

  it('refuses to create the same publisher twice and keeps its secret and token', async () => {
    const secretFile = path.join(dataDir, 'secrets', 'jwt-hs256-publisher-7');
    const secretBefore = readFileSync(secretFile, 'utf8');
    const itemBefore = await rawPublisherItem(7);
    const second = publisherCreate(target, { id: '7', name: 'Someone else' });
    await expect(second).rejects.toBeInstanceOf(CommandError);
    await expect(publisherCreate(target, { id: '7', name: 'Someone else' })).rejects.toThrow('Publisher 7 already exists');
    expect(readFileSync(secretFile, 'utf8')).toBe(secretBefore);
    expect(await rawPublisherItem(7)).toEqual(itemBefore);
  });

  it('defaults to the keep policy and an inactive StoreKit integration', async () => {
    await publisherCreate(target, { id: '8', name: 'Beta' });
    const publisher = await storedPublisher(8);
    expect(publisher.ownershipPolicy).toBe('keep');
    expect(publisher.storeKit.activated).toBe(false);
    expect(publisher.jwt).toEqual({ hs256SecretRef: 'file:jwt-hs256-publisher-8' });
  });

  it.each<[string, Args, RegExp]>([
    ['a missing name', { id: '30' }, /--name is required/],
    ['an unknown ownership policy', { id: '30', name: 'X', 'ownership-policy': 'steal' }, /keep, transfer/],
    ['a name with a newline', { id: '30', name: 'a\nb' }, /--name/],
  ])('refuses %s as a usage error', async (_case, args, message) => {
    await expect(publisherCreate(target, args)).rejects.toBeInstanceOf(UsageError);
    await expect(publisherCreate(target, args)).rejects.toThrow(message);
    expect(await publishers.getPublisher(30)).toBeUndefined();
  });

  it('lists publisher ids in order', async () => {
    const { publisherIds } = await publisherList(target);
    expect(publisherIds).toEqual(expect.arrayContaining([7, 8]));
    expect(publisherIds).toEqual([...publisherIds].sort((a, b) => a - b));
  });
});

describe('customer add and offer map', () => {
  it('adds a customer the repository then finds', async () => {
    await expect(customerAdd(target, { publisher: '7', customer: '101' })).resolves.toEqual({ publisherId: 7, customerId: 101 });
    expect(await publishers.customerExists(7, 101)).toBe(true);
    expect(await publishers.customerExists(7, 102)).toBe(false);
    expect(await publishers.customerExists(8, 101)).toBe(false);
  });

  it('adding the same customer again is harmless', async () => {
    await expect(customerAdd(target, { publisher: '7', customer: '101' })).resolves.toEqual({ publisherId: 7, customerId: 101 });
    expect(await publishers.customerExists(7, 101)).toBe(true);
  });

  it('refuses a customer of an unknown publisher', async () => {
    await expect(customerAdd(target, { publisher: '999', customer: '1' })).rejects.toThrow(/Publisher 999 not found/);
    expect(await publishers.customerExists(999, 1)).toBe(false);
  });

  it.each([
    ['apple', 'premium_monthly', 'S100000001_US'],
    ['google', 'premium.yearly', 'S100000002_US'],
  ] as const)('maps a %s product to an offer', async (store, productId, offerId) => {
    const mapped = await offerMap(target, { publisher: '7', store, product: productId, offer: offerId });
    expect(mapped).toEqual({ publisherId: 7, store, productId, offerId });
    expect(await publishers.getOfferId(7, store, productId)).toBe(offerId);
    expect(await publishers.getOfferId(8, store, productId)).toBeUndefined();
  });

  it('remaps a product to a new offer', async () => {
    await offerMap(target, { publisher: '7', store: 'apple', product: 'lifetime', offer: 'A1' });
    await offerMap(target, { publisher: '7', store: 'apple', product: 'lifetime', offer: 'A2' });
    expect(await publishers.getOfferId(7, 'apple', 'lifetime')).toBe('A2');
  });

  it.each<[string, Args]>([
    ['an empty offer id', { publisher: '7', store: 'apple', product: 'p1', offer: '' }],
    ['a 65-character offer id', { publisher: '7', store: 'apple', product: 'p1', offer: 'O'.repeat(65) }],
    ['an offer id with a space', { publisher: '7', store: 'apple', product: 'p1', offer: 'S1 US' }],
    ['an unknown store', { publisher: '7', store: 'amazon', product: 'p1', offer: 'S1' }],
    ['a missing product', { publisher: '7', store: 'apple', offer: 'S1' }],
  ])('refuses %s as a usage error', async (_case, args) => {
    await expect(offerMap(target, args)).rejects.toBeInstanceOf(UsageError);
    expect(await publishers.getOfferId(7, 'apple', 'p1')).toBeUndefined();
  });

  it('accepts a 64-character offer id', async () => {
    const offer = 'O'.repeat(64);
    await offerMap(target, { publisher: '7', store: 'google', product: 'p64', offer });
    expect(await publishers.getOfferId(7, 'google', 'p64')).toBe(offer);
  });
});

describe('google configure', () => {
  const serviceAccount = () =>
    JSON.stringify({
      type: 'service_account',
      client_email: 'play@acme.iam.gserviceaccount.com',
      private_key: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    });

  it('stores the service account as a secret and adds the profile for the package', async () => {
    const json = serviceAccount();
    const file = writeTemp('play.json', json);
    const result = await googleConfigure(target, { publisher: '7', 'package-name': 'com.acme.tv', 'service-account-file': file });
    const profile = { packageName: 'com.acme.tv', serviceAccountRef: 'file:google-service-account-7-com.acme.tv' };
    expect(result).toEqual({ publisherId: 7, google: { profiles: [profile] } });
    expect((await storedPublisher(7)).google).toEqual({ profiles: [profile] });
    expect(readFileSync(path.join(dataDir, 'secrets', 'google-service-account-7-com.acme.tv'), 'utf8')).toBe(json);
    expect(JSON.stringify(await rawPublisherItem(7))).not.toContain('PRIVATE KEY');
  });

  it.each([
    ['not JSON', 'nope', CommandError],
    ['JSON without a key', JSON.stringify({ client_email: 'a@b' }), CommandError],
  ])('refuses a service account file that is %s', async (_name, content, type) => {
    const file = writeTemp('bad.json', content);
    await expect(googleConfigure(target, { publisher: '7', 'package-name': 'com.acme.tv', 'service-account-file': file })).rejects.toBeInstanceOf(type);
  });

  it.each(['acme', '1com.acme', 'com..acme'])('refuses the package name %s', async (packageName) => {
    await expect(googleConfigure(target, { publisher: '7', 'package-name': packageName })).rejects.toBeInstanceOf(UsageError);
  });

  describe('push settings of the Real-time Developer Notifications subscription', () => {
    const PUSH = 'rtdn-push@acme.iam.gserviceaccount.com';
    let file: string;

    beforeAll(async () => {
      await publisherCreate(target, { id: '27', name: 'Push Media' });
      file = writeTemp('play-27.json', serviceAccount());
    });

    const configure = (extra: Args = {}) => googleConfigure(target, { publisher: '27', 'package-name': 'com.acme.push', ...extra });

    it('refuses --push-audience while the publisher has no push service account', async () => {
      await expect(configure({ 'service-account-file': file, 'push-audience': 'https://push.acme.example/rtdn' })).rejects.toBeInstanceOf(CommandError);
      expect((await storedPublisher(27)).google).toBeUndefined();
    });

    it('sets the service account, then the audience, keeping each when the other is given, and both when neither is', async () => {
      expect((await configure({ 'service-account-file': file, 'push-service-account': PUSH })).google.push).toEqual({ serviceAccountEmail: PUSH });
      expect((await configure({ 'push-audience': 'https://push.acme.example/rtdn' })).google.push).toEqual({ serviceAccountEmail: PUSH, audience: 'https://push.acme.example/rtdn' });
      expect((await configure({ 'push-service-account': 'other@acme.iam.gserviceaccount.com' })).google.push).toEqual({
        serviceAccountEmail: 'other@acme.iam.gserviceaccount.com',
        audience: 'https://push.acme.example/rtdn',
      });
      await googleConfigure(target, { publisher: '27', 'package-name': 'com.acme.second', 'service-account-file': file });
      expect((await storedPublisher(27)).google).toEqual({
        profiles: [
          { packageName: 'com.acme.push', serviceAccountRef: 'file:google-service-account-27-com.acme.push' },
          { packageName: 'com.acme.second', serviceAccountRef: 'file:google-service-account-27-com.acme.second' },
        ],
        push: { serviceAccountEmail: 'other@acme.iam.gserviceaccount.com', audience: 'https://push.acme.example/rtdn' },
      });
    });

    it('takes an http audience on a loopback host (the local stack)', async () => {
      expect((await configure({ 'push-audience': 'http://127.0.0.1:3000/google-play/notifications/27' })).google.push?.audience).toBe(
        'http://127.0.0.1:3000/google-play/notifications/27',
      );
    });

    it.each([
      ['--push-service-account', 'not-an-email'],
      ['--push-service-account', 'two@at@example.com'],
      ['--push-service-account', 'space in@example.com'],
      ['--push-service-account', ''],
      ['--push-audience', 'http://push.acme.example/rtdn'],
      ['--push-audience', 'not a url'],
      ['--push-audience', 'https://user:pw@push.acme.example/rtdn'],
      ['--push-audience', ''],
    ])('refuses %s %j', async (option, value) => {
      const before = (await storedPublisher(27)).google;
      await expect(configure({ [option.slice(2)]: value })).rejects.toBeInstanceOf(UsageError);
      expect((await storedPublisher(27)).google).toEqual(before);
    });
  });
});

describe('apple configure', () => {
  const base = { publisher: '7', 'bundle-id': 'com.acme.app', 'issuer-id': ISSUER_ID, 'key-id': KEY_ID };

  it('stores a P-256 .p8 as a secret file and references it from the publisher', async () => {
    const pem = pkcs8('ec-p256');
    const keyFile = writeTemp('AuthKey_ABCDE12345.p8', pem);
    const result = await appleConfigure(target, { ...base, 'app-apple-id': '6443891234', 'private-key-file': keyFile, activate: true });
    const expectedApple = {
      bundleId: 'com.acme.app',
      appAppleId: 6443891234,
      issuerId: ISSUER_ID,
      keyId: KEY_ID,
      privateKeyRef: 'file:apple-api-key-publisher-7.p8',
      environments: ['Production', 'Sandbox'],
    };
    expect(result).toEqual({ publisherId: 7, apple: expectedApple, storeKit: { activated: true, migrationInProgress: false } });
    const publisher = await storedPublisher(7);
    expect(publisher.apple).toEqual(expectedApple);
    const stored = path.join(dataDir, 'secrets', 'apple-api-key-publisher-7.p8');
    expect(readFileSync(stored, 'utf8')).toBe(pem);
    expect(statSync(stored).mode & 0o777).toBe(0o600);
    // The API's own secret reader resolves the reference to the same key.
    await expect(new ReferenceSecretStore({ localDir: path.join(dataDir, 'secrets'), cacheSeconds: 0 }).get(expectedApple.privateKeyRef)).resolves.toBe(pem);
    expect(JSON.stringify(await rawPublisherItem(7))).not.toContain('PRIVATE KEY');
    // Other settings survive.
    expect(publisher.tokenHash).toMatch(/^[0-9a-f]{64}$/);
    expect(publisher.jwt.issuer).toBe('https://id.acme.example');
  });

  it('keeps the current key and the StoreKit switch when reconfigured without them', async () => {
    await appleConfigure(target, { ...base, 'bundle-id': 'com.acme.app2', environments: 'Sandbox' });
    const publisher = await storedPublisher(7);
    expect(publisher.apple).toEqual({
      bundleId: 'com.acme.app2',
      issuerId: ISSUER_ID,
      keyId: KEY_ID,
      privateKeyRef: 'file:apple-api-key-publisher-7.p8',
      environments: ['Sandbox'],
    });
    expect(publisher.storeKit.activated).toBe(true);
  });

  it('uses the store simulator key locally when the publisher has none and no file is given', async () => {
    const simulatorKey = path.join(dataDir, 'secrets', APPLE_KEY_FILE);
    await expect(appleConfigure(target, { ...base, publisher: '8', environments: 'Sandbox' })).rejects.toThrow(/simulator's key .* is missing/);
    expect((await storedPublisher(8)).apple).toBeUndefined();
    writeFileSync(simulatorKey, pkcs8('ec-p256'));
    try {
      const result = await appleConfigure(target, { ...base, publisher: '8', environments: 'Sandbox' });
      expect(result.apple.privateKeyRef).toBe('file:apple-api-key.p8');
      expect(result.storeKit.activated).toBe(false);
    } finally {
      unlinkSync(simulatorKey);
    }
  });

  it.each<[string, Args]>([
    ['Production by default', {}],
    ['Production listed explicitly', { environments: 'Production,Sandbox' }],
  ])('refuses %s without --app-apple-id', async (_case, extra) => {
    const before = await storedPublisher(7);
    const attempt = appleConfigure(target, { ...base, ...extra });
    await expect(attempt).rejects.toBeInstanceOf(UsageError);
    await expect(appleConfigure(target, { ...base, ...extra })).rejects.toThrow(/requires --app-apple-id/);
    expect(await storedPublisher(7)).toEqual(before);
  });

  it.each<[string, () => string, RegExp]>([
    ['an RSA key', () => pkcs8('rsa'), /expected an EC P-256 key, got rsa/],
    ['an Ed25519 key', () => pkcs8('ed25519'), /expected an EC P-256 key, got ed25519/],
    ['a P-384 key', () => pkcs8('ec-p384'), /expected an EC P-256 key, got ec secp384r1/],
    [
      'a SEC1 (not PKCS#8) EC key',
      () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'sec1', format: 'pem' }).toString(),
      /PKCS#8/,
    ],
    ['a PEM that does not parse', () => '-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n', /does not parse/],
    ['a text file', () => 'hello\n', /PKCS#8/],
  ])('refuses %s and changes nothing', async (_case, content, message) => {
    const before = await storedPublisher(7);
    const stored = readFileSync(path.join(dataDir, 'secrets', 'apple-api-key-publisher-7.p8'), 'utf8');
    const keyFile = writeTemp(`bad-${randomUUID()}.p8`, content());
    const attempt = appleConfigure(target, { ...base, environments: 'Sandbox', 'private-key-file': keyFile });
    await expect(attempt).rejects.toBeInstanceOf(CommandError);
    await expect(appleConfigure(target, { ...base, environments: 'Sandbox', 'private-key-file': keyFile })).rejects.toThrow(message);
    expect(await storedPublisher(7)).toEqual(before);
    expect(readFileSync(path.join(dataDir, 'secrets', 'apple-api-key-publisher-7.p8'), 'utf8')).toBe(stored);
  });

  it('refuses a key file that does not exist', async () => {
    await expect(
      appleConfigure(target, { ...base, environments: 'Sandbox', 'private-key-file': path.join(dataDir, 'nope.p8') }),
    ).rejects.toThrow(/Cannot read --private-key-file .*ENOENT/);
  });

  it.each<[string, Args, RegExp]>([
    ['a malformed issuer id', { 'issuer-id': 'not-a-uuid' }, /--issuer-id/],
    ['a lower-case key id', { 'key-id': 'abcde12345' }, /--key-id/],
    ['a bundle id without a dot', { 'bundle-id': 'acme' }, /--bundle-id/],
    ['an unknown environment', { environments: 'Staging', 'app-apple-id': '1' }, /--environments/],
    ['a repeated environment', { environments: 'Sandbox,sandbox' }, /twice/],
    ['a non-numeric app Apple ID', { 'app-apple-id': '12ab' }, /--app-apple-id/],
  ])('refuses %s as a usage error', async (_case, extra, message) => {
    await expect(appleConfigure(target, { ...base, ...extra })).rejects.toBeInstanceOf(UsageError);
    await expect(appleConfigure(target, { ...base, ...extra })).rejects.toThrow(message);
  });
});

describe('jwt issue', () => {
  it('signs a customer JWT with the stored HS256 secret that the API verifies', async () => {
    const token = await jwtIssue(target, { publisher: '7', customer: '101', ttl: '600' });
    const secret = readFileSync(path.join(dataDir, 'secrets', 'jwt-hs256-publisher-7'), 'utf8');
    const { payload, protectedHeader } = await jwtVerify(token, new TextEncoder().encode(secret), {
      algorithms: ['HS256'],
      issuer: 'https://id.acme.example',
    });
    expect(protectedHeader.alg).toBe('HS256');
    expect(payload.customerId).toBe(101);
    expect(payload.publisherId).toBe(7);
    expect(payload.iss).toBe('https://id.acme.example');
    expect((payload.exp ?? 0) - (payload.iat ?? 0)).toBe(600);

    // The API's verifier (algorithm pinned, iss checked) accepts it for this publisher.
    const verifier = new JoseCustomerTokenVerifier(new ReferenceSecretStore({ localDir: path.join(dataDir, 'secrets'), cacheSeconds: 0 }));
    await expect(verifier.verify(await storedPublisher(7), token)).resolves.toEqual({ customerId: 101, publisherId: 7 });
    // Another publisher's secret does not verify it.
    await expect(verifier.verify(await storedPublisher(8), token)).resolves.toBeUndefined();
  });

  it('defaults to one hour and omits iss when the publisher has none', async () => {
    const payload = decodeJwt(await jwtIssue(target, { publisher: '8', customer: '5' }));
    expect(payload).toMatchObject({ customerId: 5, publisherId: 8 });
    expect(payload.iss).toBeUndefined();
    expect((payload.exp ?? 0) - (payload.iat ?? 0)).toBe(3600);
  });

  it.each(['0', '-5', '1h', String(31 * 24 * 3600)])('refuses --ttl %s', async (ttl) => {
    await expect(jwtIssue(target, { publisher: '7', customer: '1', ttl })).rejects.toBeInstanceOf(UsageError);
  });

  it('refuses an unknown publisher', async () => {
    await expect(jwtIssue(target, { publisher: '404', customer: '1' })).rejects.toThrow(/Publisher 404 not found/);
  });
});

describe('a deployed stack (AWS calls faked, data in DynamoDB Local)', () => {
  const secretsWritten: { name: string; value: string }[] = [];
  const io = (outputs: Record<string, string>): DeployedIo => ({
    describeStackOutputs: async (name) => (name === 'iap-sync-prod' ? outputs : Promise.reject(new Error('Stack does not exist'))),
    sendMessage: async () => undefined,
    putSecret: async (name, value) => {
      secretsWritten.push({ name, value });
      return `arn:aws:secretsmanager:eu-west-1:123456789012:secret:${name}-AbCdEf`;
    },
    db: target.db,
    close: () => undefined,
  });
  const outputs = {
    TableName: LOCAL_TABLE_NAME,
    ApiUrl: 'https://abc.execute-api.eu-west-1.amazonaws.com/',
    EventBusName: 'iap-sync-prod',
    StateMachineArn: 'arn:aws:states:eu-west-1:123456789012:stateMachine:sync',
  };

  it('finds the table through the stack outputs and stores secrets in Secrets Manager by ARN', async () => {
    const deployed = await deployedTarget('iap-sync-prod', 'eu-west-1', io(outputs));
    expect(deployed).toMatchObject({ kind: 'deployed', tableName: LOCAL_TABLE_NAME, apiUrl: outputs.ApiUrl });
    const { publisherToken } = await publisherCreate(deployed, { id: '40', name: 'Deployed' });
    const publisher = await storedPublisher(40);
    expect(publisher.jwt.hs256SecretRef).toBe('arn:aws:secretsmanager:eu-west-1:123456789012:secret:iap-sync/iap-sync-prod/jwt-hs256-publisher-40-AbCdEf');
    expect(secretsWritten.map((s) => s.name)).toEqual(['iap-sync/iap-sync-prod/jwt-hs256-publisher-40']);
    expect(secretsWritten[0]?.value).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(publisher.tokenHash).toBe(hashPublisherToken(publisherToken));
    expect(existsSync(path.join(dataDir, 'secrets', 'jwt-hs256-publisher-40'))).toBe(false);
  });

  it('requires a key file for Apple when the publisher has no key yet', async () => {
    const deployed = await deployedTarget('iap-sync-prod', undefined, io(outputs));
    await expect(
      appleConfigure(deployed, { publisher: '40', 'bundle-id': 'com.acme.app', 'issuer-id': ISSUER_ID, 'key-id': KEY_ID, environments: 'Sandbox' }),
    ).rejects.toThrow(/--private-key-file is required/);
  });

  it('refuses jwt issue', async () => {
    const deployed = await deployedTarget('iap-sync-prod', undefined, io(outputs));
    const attempt = jwtIssue(deployed, { publisher: '40', customer: '1' });
    await expect(attempt).rejects.toBeInstanceOf(UsageError);
    await expect(jwtIssue(deployed, { publisher: '40', customer: '1' })).rejects.toThrow(/only with the local stack/);
  });

  it.each<[string, string, Record<string, string>, RegExp]>([
    ['a stack without the iap-sync outputs', 'iap-sync-prod', { TableName: 't' }, /no output ApiUrl, EventBusName, StateMachineArn/],
    ['an unknown stack', 'other-stack', outputs, /Cannot describe stack other-stack: Error: Stack does not exist/],
  ])('explains %s', async (_case, name, stackOutputs, message) => {
    await expect(deployedTarget(name, undefined, io(stackOutputs))).rejects.toThrow(message);
  });
});

describe('sync show', () => {
  const id = randomUUID();
  const sync: Synchronization = {
    synchronizationId: id,
    publisherId: 7,
    store: 'apple',
    kind: 'register',
    customerId: 101,
    transactionId: '2000000123',
    status: 'processing',
    correlationId: 'order-42',
    requestHash: 'a'.repeat(64),
    lockKeys: ['apple#txn#2000000123'],
    client: {},
    attempts: 1,
    createdAt: '2025-05-01T10:00:00.000Z',
    updatedAt: '2025-05-01T10:00:00.000Z',
  };

  beforeAll(async () => {
    const repository = new DynamoDbSynchronizationRepository(target.db, target.tableName);
    await expect(repository.accept({ sync, leaseExpiresAt: Date.now() + 60_000 })).resolves.toEqual({ outcome: 'accepted' });
  });

  it('shows a processing synchronization without a result', async () => {
    await expect(syncShow(target, id.toUpperCase(), { publisher: '7' })).resolves.toEqual({
      synchronizationId: id,
      status: 'processing',
      correlationId: 'order-42',
      publisherId: 7,
      store: 'apple',
      kind: 'register',
      customerId: 101,
      transactionId: '2000000123',
      attempts: 1,
      recoveries: 0,
      // The execution the register started, named after the publisher and the id.
      executions: [{ name: `7-${id}`, startedAt: '2025-05-01T10:00:00.000Z', by: 'accept' }],
      createdAt: '2025-05-01T10:00:00.000Z',
      updatedAt: '2025-05-01T10:00:00.000Z',
    });
  });

  it('shows the result once finalized', async () => {
    const repository = new DynamoDbSynchronizationRepository(target.db, target.tableName);
    const finalizedAt = '2025-05-01T10:00:05.000Z';
    await expect(
      repository.finalize({
        sync: { ...sync, status: 'finalized', result: 'PURCHASE_SYNCHRONIZED', accessGranted: true, offerId: 'S1_US', attempts: 2, updatedAt: finalizedAt, finalizedAt },
        entitlementChanges: [],
      }),
    ).resolves.toBe(true);
    const shown = await syncShow(target, id, { publisher: '7' });
    expect(shown).toMatchObject({
      status: 'finalized',
      accessGranted: true,
      offerId: 'S1_US',
      result: 'PURCHASE_SYNCHRONIZED',
      attempts: 2,
      finalizedAt,
    });
  });

  it.each<[string, () => string, Args]>([
    ['an unknown id', () => randomUUID(), { publisher: '7' }],
    ["another publisher's synchronization", () => id, { publisher: '8' }],
  ])('answers not found for %s', async (_case, syncId, args) => {
    await expect(syncShow(target, syncId(), args)).rejects.toBeInstanceOf(CommandError);
    await expect(syncShow(target, syncId(), args)).rejects.toThrow(/^Synchronization [0-9a-f-]{36} not found/);
  });

  it('refuses an id that is not a UUID, and a call without the publisher (ids are unique per publisher only)', async () => {
    await expect(syncShow(target, 'abc', { publisher: '7' })).rejects.toBeInstanceOf(UsageError);
    await expect(syncShow(target, id, {})).rejects.toThrow(/needs --publisher/);
  });
});

describe('ids', () => {
  const badIds = ['0', '-1', 'x', '2147483648', '1.5', '1e3', ' 1', ''];

  it.each(badIds)('refuses %j as a usage error', (raw) => {
    expect(() => parsePositiveInt32('--publisher', raw)).toThrow(UsageError);
  });

  it.each([
    ['1', 1],
    ['2147483647', 2147483647],
  ])('accepts %s', (raw, value) => {
    expect(parsePositiveInt32('--id', raw)).toBe(value);
  });

  const commands: [string, (id: string) => Promise<unknown>][] = [
    ['publisher create --id', (id) => publisherCreate(target, { id, name: 'N' })],
    ['customer add --publisher', (id) => customerAdd(target, { publisher: id, customer: '1' })],
    ['customer add --customer', (id) => customerAdd(target, { publisher: '7', customer: id })],
    ['offer map --publisher', (id) => offerMap(target, { publisher: id, store: 'apple', product: 'p', offer: 'o' })],
    ['apple configure --publisher', (id) => appleConfigure(target, { publisher: id, 'bundle-id': 'a.b', 'issuer-id': ISSUER_ID, 'key-id': KEY_ID, environments: 'Sandbox' })],
    ['jwt issue --customer', (id) => jwtIssue(target, { publisher: '7', customer: id })],
    ['sync show --publisher', (id) => syncShow(target, randomUUID(), { publisher: id })],
    ['sync retry --publisher', (id) => syncRetry(target, randomUUID(), { publisher: id })],
  ];
  const cases = commands.flatMap(([name, run]) => ['0', '-1', 'x', '2147483648'].map((id) => [name, id, run] as const));

  it.each(cases)('%s %s is a usage error', async (_name, id, run) => {
    await expect(run(id)).rejects.toBeInstanceOf(UsageError);
  });
});

describe('the command line', () => {
  function cli(argv: string[]) {
    const out = { stdout: '', stderr: '' };
    let resolved = 0;
    const run = runCli(
      argv,
      { stdout: (t) => (out.stdout += t), stderr: (t) => (out.stderr += t) },
      async () => {
        resolved += 1;
        return unclosable();
      },
    );
    return run.then((code) => ({ code, ...out, resolved }));
  }

  it('prints JSON and exits 0', async () => {
    const result = await cli(['customer', 'add', '--publisher', '7', '--customer', '202']);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ publisherId: 7, customerId: 202 });
    expect(result.stderr).toBe('');
  });

  it('prints a JWT as a bare line', async () => {
    const result = await cli(['jwt', 'issue', '--publisher', '8', '--customer', '5']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/);
  });

  it.each<[string, string[], RegExp]>([
    ['a bad id', ['customer', 'add', '--publisher=-1', '--customer', '1'], /--publisher must be an integer/],
    ['an id of 2^31', ['customer', 'add', '--publisher', '2147483648', '--customer', '1'], /--publisher must be an integer/],
    ['a missing option', ['offer', 'map', '--publisher', '7'], /--store is required/],
    ['an option of another command', ['publisher', 'list', '--bundle-id', 'x'], /Unknown option '--bundle-id'/],
    ['an unknown command', ['publisher', 'delete'], /Unknown command 'publisher delete'/],
    ['jwt issue against a deployed stack', ['jwt', 'issue', '--publisher', '7', '--customer', '1', '--stack', 'prod'], /only with the local stack/],
    ['an extra argument', ['publisher', 'list', 'now'], /Unexpected argument 'now'/],
  ])('exits 2 on %s before contacting the stack', async (_case, argv, message) => {
    const result = await cli(argv);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stdout).toBe('');
    expect(result.resolved).toBe(0);
  });

  it('exits 1 with one line when the synchronization is unknown', async () => {
    const unknown = randomUUID();
    const result = await cli(['sync', 'show', unknown, '--publisher', '7']);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`iap-sync: Synchronization ${unknown} not found for publisher 7 in ${target.description}\n`);
  });

  it('exits 1 with a hint when the local stack is not running', async () => {
    const stopped = mkdtempSync(path.join(os.tmpdir(), 'iap-sync-cli-stopped-'));
    try {
      // A port nothing listens on: the previous run's runtime.json after the stack stopped.
      writeFileSync(path.join(stopped, 'runtime.json'), JSON.stringify({ dynamodbEndpoint: 'http://127.0.0.1:9', tableName: LOCAL_TABLE_NAME }));
      const err: string[] = [];
      const code = await runCli(['publisher', 'list', '--data-dir', stopped], { stdout: () => undefined, stderr: (t) => err.push(t) });
      expect(code).toBe(1);
      expect(err.join('')).toMatch(/^iap-sync: Cannot reach DynamoDB Local .* is it running/);
    } finally {
      rmSync(stopped, { recursive: true, force: true });
    }
  });

  it('`node cli/bin.cjs --help` exits 0 and lists every command', () => {
    const child = spawnSync(process.execPath, ['cli/bin.cjs', '--help'], { cwd: PROJECT_ROOT, encoding: 'utf8', timeout: 30_000 });
    expect(child.status).toBe(0);
    expect(child.stderr).toBe('');
    for (const command of [
      'publisher create',
      'publisher list',
      'customer add',
      'offer map',
      'apple configure',
      'apple test-notification',
      'reconcile',
      'google configure',
      'jwt issue',
      'sync show',
      'sync retry',
      'webhook add',
      'webhook replay',
    ]) {
      expect(child.stdout).toContain(`  ${command}`);
    }
    expect(COMMANDS).toHaveLength(20);
  });
});
