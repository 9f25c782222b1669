import { appleKeySecretName } from '../../cli/commands/apple';
import { googleServiceAccountSecretName } from '../../cli/commands/google';
import { secretPurpose } from '../../cli/commands/webhook';
import { JWT_SECRET_FILE } from '../../local/seed';
import { SECRET_SCOPE_NAMES, SECRET_SCOPES, secretNamePattern, secretScopeOf, type SecretScope } from '../../lib/secret-scopes';

// No synth: the names the command line gives secrets, against the scopes the stack grants by prefix.

describe('secret scopes', () => {
  it.each<[string, string, SecretScope]>([
    ['publisher create (customer JWT secret)', JWT_SECRET_FILE(42), 'jwt'],
    ['apple configure (App Store Connect key)', appleKeySecretName(42), 'apple'],
    ['google configure (service account)', googleServiceAccountSecretName(42, 'com.acme.tv'), 'google'],
    ['webhook add / rotate-secret (signing secret)', secretPurpose(42, 'ep_1a2b', new Date('2026-11-23T00:00:00Z')), 'webhook'],
  ])('%s stores %s in the %s scope', (_command, purpose, scope) => {
    expect(secretScopeOf(purpose)).toBe(scope);
  });

  it('no prefix is the start of another, so no name falls in two scopes', () => {
    const prefixes = Object.values(SECRET_SCOPES).map((scope) => scope.prefix);
    for (const a of prefixes) for (const b of prefixes) if (a !== b) expect(b.startsWith(a)).toBe(false);
  });

  it.each(['publisher-token-42', 'apple-api-key.p8', 'jwt-rs256-publisher-1', 'google-service-account'])(
    'a name outside every scope (%s) has none',
    (purpose) => {
      expect(secretScopeOf(purpose)).toBeUndefined();
    },
  );

  it('patterns stay inside the stack: iap-sync/<stack>/<prefix>*', () => {
    expect(SECRET_SCOPE_NAMES.map((scope) => secretNamePattern('IapSync-prod', scope))).toEqual([
      'iap-sync/IapSync-prod/jwt-hs256-publisher-*',
      'iap-sync/IapSync-prod/apple-api-key-publisher-*',
      'iap-sync/IapSync-prod/google-service-account-*',
      'iap-sync/IapSync-prod/webhook-secret-*',
    ]);
  });
});
