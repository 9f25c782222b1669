import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import {
  InvalidWebhookSecretError,
  decodeWebhookSecret,
  generateWebhookSecret,
  isValidWebhookSecret,
  newWebhookId,
  signWebhook,
  signatureHeader,
  verifyWebhook,
  webhookHeaders,
} from '../../../lambdas/webhooks/domain/signature';
import { SyncResultWebhookBody } from '../../../lambdas/events/schemas';

// The contract's example envelope, with a non-ASCII correlation id so the bytes signed are UTF-8.
const envelope = SyncResultWebhookBody.parse(
  JSON.parse(readFileSync(join(__dirname, '..', '..', 'contract', 'fixtures', 'inapp-purchase-sync-result.webhook.json'), 'utf8')),
);
const body = JSON.stringify({ ...envelope, data: { ...envelope.data, correlationId: 'commande-é-42' } });

const OLD_SECRET = generateWebhookSecret();
const NEW_SECRET = generateWebhookSecret();
const OTHER_SECRET = generateWebhookSecret();

const nowSeconds = (): number => Math.floor(Date.now() / 1000);

/** The reference verifier: returns the parsed body, or the error it threw. */
function reference(secret: string, headers: Record<string, string>, payload: string): unknown {
  try {
    return new Webhook(secret).verify(payload, headers);
  } catch (error) {
    return error;
  }
}

describe('webhook secrets and ids', () => {
  it('generates whsec_ secrets of 32 random bytes in base64, different every time', () => {
    const secrets = Array.from({ length: 50 }, () => generateWebhookSecret());
    for (const secret of secrets) {
      expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
      expect(decodeWebhookSecret(secret)).toHaveLength(32);
    }
    expect(new Set(secrets).size).toBe(50);
  });

  it('generates msg_ ids with 128 random bits, url-safe and without dots', () => {
    const ids = Array.from({ length: 1000 }, () => newWebhookId());
    for (const id of ids) expect(id).toMatch(/^msg_[A-Za-z0-9_-]{22}$/);
    expect(new Set(ids).size).toBe(1000);
  });

  it.each([
    ['no prefix', randomBytes(32).toString('base64')],
    ['nothing after the prefix', 'whsec_'],
    ['characters outside base64', 'whsec_' + randomBytes(32).toString('base64').replace(/.$/, '!')],
    ['url-safe base64 instead of base64', 'whsec_' + '-_'.repeat(22)],
    ['fewer than 24 bytes', 'whsec_' + randomBytes(16).toString('base64')],
  ])('refuses a secret with %s', (_case, secret) => {
    expect(isValidWebhookSecret(secret)).toBe(false);
    expect(() => signWebhook(secret, 'msg_1', 1_700_000_000, body)).toThrow(InvalidWebhookSecretError);
  });

  it('accepts a secret of exactly 24 bytes, the contract floor', () => {
    expect(isValidWebhookSecret('whsec_' + randomBytes(24).toString('base64'))).toBe(true);
  });
});

describe('signing matches the Standard Webhooks reference', () => {
  it('reproduces the Standard Webhooks specification test vector', () => {
    const signature = signWebhook(
      'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
      'msg_p5jXN8AQM9LWM0D4loKWxJek',
      1614265330,
      '{"test": 2432232314}',
    );
    expect(signature).toBe('v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
  });

  it.each([
    ['an ASCII body', '{"a":1}'],
    ['the contract envelope with UTF-8', body],
    ['an empty body', ''],
  ])('computes the same v1 signature as the reference for %s', (_case, payload) => {
    const id = newWebhookId();
    const timestamp = 1_767_225_600;
    expect(signWebhook(NEW_SECRET, id, timestamp, payload)).toBe(new Webhook(NEW_SECRET).sign(id, new Date(timestamp * 1000), payload));
    expect(signWebhook(NEW_SECRET, id, timestamp, Buffer.from(payload))).toBe(signWebhook(NEW_SECRET, id, timestamp, payload));
  });

  it.each([
    ['a fractional timestamp', 1.5],
    ['a negative timestamp', -1],
    ['a timestamp beyond the safe integers', Number.MAX_SAFE_INTEGER + 2],
  ])('refuses to sign with %s', (_case, timestamp) => {
    expect(() => signWebhook(NEW_SECRET, 'msg_1', timestamp, body)).toThrow(RangeError);
  });

  it('builds the three headers, with the timestamp as unix seconds', () => {
    const id = newWebhookId();
    const headers = webhookHeaders([NEW_SECRET], id, 1_767_225_600, body);
    expect(headers).toEqual({
      'webhook-id': id,
      'webhook-timestamp': '1767225600',
      'webhook-signature': signWebhook(NEW_SECRET, id, 1_767_225_600, body),
    });
  });

  it('sends one signature per distinct active secret, space-separated', () => {
    const header = signatureHeader([OLD_SECRET, NEW_SECRET, OLD_SECRET], 'msg_1', 1_767_225_600, body);
    expect(header.split(' ')).toEqual([
      signWebhook(OLD_SECRET, 'msg_1', 1_767_225_600, body),
      signWebhook(NEW_SECRET, 'msg_1', 1_767_225_600, body),
    ]);
    expect(() => signatureHeader([], 'msg_1', 1_767_225_600, body)).toThrow(InvalidWebhookSecretError);
  });
});

describe('our signatures verify with the reference verifier and ours', () => {
  const rotationCases: [string, string[], string][] = [
    ['a single secret', [NEW_SECRET], NEW_SECRET],
    ['the old secret of a rotation', [OLD_SECRET, NEW_SECRET], OLD_SECRET],
    ['the new secret of a rotation', [OLD_SECRET, NEW_SECRET], NEW_SECRET],
  ];

  it.each(rotationCases)('a receiver holding %s accepts the delivery', (_case, activeSecrets, receiverSecret) => {
    const now = nowSeconds();
    const id = newWebhookId();
    const headers = webhookHeaders(activeSecrets, id, now, body);
    expect(headers['webhook-signature'].split(' ')).toHaveLength(activeSecrets.length);

    expect(reference(receiverSecret, headers, body)).toEqual(JSON.parse(body));
    expect(verifyWebhook(receiverSecret, headers, body, now)).toEqual({ valid: true, id, timestampSeconds: now });
  });

  it('a receiver holding neither rotation secret refuses the delivery', () => {
    const now = nowSeconds();
    const headers = webhookHeaders([OLD_SECRET, NEW_SECRET], newWebhookId(), now, body);
    expect(reference(OTHER_SECRET, headers, body)).toBeInstanceOf(WebhookVerificationError);
    expect(verifyWebhook(OTHER_SECRET, headers, body, now)).toEqual({ valid: false, reason: 'no-matching-signature' });
  });

  it('accepts headers signed by the reference library (the other direction)', () => {
    const now = nowSeconds();
    const id = newWebhookId();
    const headers = {
      'Webhook-Id': id,
      'Webhook-Timestamp': String(now),
      'Webhook-Signature': `v1a,ignored ${new Webhook(NEW_SECRET).sign(id, new Date(now * 1000), body)}`,
    };
    expect(verifyWebhook([OLD_SECRET, NEW_SECRET], headers, body, now)).toEqual({ valid: true, id, timestampSeconds: now });
  });

  type Tamper = (headers: Record<string, string>, now: number) => { headers: Record<string, string>; payload: string };
  const refusals: [string, Tamper, RegExp, string][] = [
    [
      'a tampered body',
      (headers) => ({ headers, payload: body.replace('"accessGranted":true', '"accessGranted":false') }),
      /No matching signature/,
      'no-matching-signature',
    ],
    [
      'another webhook-id',
      (headers) => ({ headers: { ...headers, 'webhook-id': newWebhookId() }, payload: body }),
      /No matching signature/,
      'no-matching-signature',
    ],
    [
      'a timestamp changed after signing',
      (headers) => ({ headers: { ...headers, 'webhook-timestamp': String(Number(headers['webhook-timestamp']) + 1) }, payload: body }),
      /No matching signature/,
      'no-matching-signature',
    ],
    [
      'a correctly signed but 10-minute-old timestamp',
      (_headers, now) => ({ headers: webhookHeaders([NEW_SECRET], newWebhookId(), now - 600, body), payload: body }),
      /too old/,
      'timestamp-too-old',
    ],
    [
      'a correctly signed timestamp 10 minutes ahead',
      (_headers, now) => ({ headers: webhookHeaders([NEW_SECRET], newWebhookId(), now + 600, body), payload: body }),
      /too new/,
      'timestamp-too-new',
    ],
    [
      'a missing signature header',
      (headers) => ({ headers: { 'webhook-id': headers['webhook-id'] ?? '', 'webhook-timestamp': headers['webhook-timestamp'] ?? '' }, payload: body }),
      /Missing required headers/,
      'missing-headers',
    ],
  ];

  it.each(refusals)('both verifiers refuse %s', (_case, tamper, referenceMessage, ourReason) => {
    const now = nowSeconds();
    const signed = webhookHeaders([OLD_SECRET, NEW_SECRET], newWebhookId(), now, body);
    const { headers, payload } = tamper(signed, now);

    const referenceResult = reference(NEW_SECRET, headers, payload);
    expect(referenceResult).toBeInstanceOf(WebhookVerificationError);
    expect((referenceResult as Error).message).toMatch(referenceMessage);
    expect(verifyWebhook([OLD_SECRET, NEW_SECRET], headers, payload, now)).toEqual({ valid: false, reason: ourReason });
  });

  it.each([
    [299, true],
    [300, true],
    [301, false],
  ])('our verifier accepts a timestamp %i s old: %s (5-minute tolerance)', (age, valid) => {
    const now = 1_767_225_600;
    const headers = webhookHeaders([NEW_SECRET], 'msg_1', now - age, body);
    expect(verifyWebhook(NEW_SECRET, headers, body, now).valid).toBe(valid);
    expect(verifyWebhook(NEW_SECRET, headers, body, now, 3600).valid).toBe(true);
  });

  it('refuses a timestamp that is not unix seconds', () => {
    const headers = { ...webhookHeaders([NEW_SECRET], 'msg_1', 1_767_225_600, body), 'webhook-timestamp': '1767225600.0' };
    expect(verifyWebhook(NEW_SECRET, headers, body, 1_767_225_600)).toEqual({ valid: false, reason: 'invalid-timestamp' });
  });
});
