import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DynamoDbPublisherRepository, toJwtSettings } from '../../../lambdas/tenants/adapters/dynamodb-publisher-repository';
import { ConfigurationError } from '../../../lambdas/platform/errors';
import type { Publisher } from '../../../lambdas/tenants/domain/publisher';
import { jwksUrlProblem } from '../../../lambdas/tenants/ports/credential-verifier';

/** The JWKS URL rule (https, or http on loopback only) where configuration is read and written. */

describe('the JWKS URL rule', () => {
  it.each([
    'https://id.acme.example/.well-known/jwks.json',
    'https://id.acme.example:8443/jwks?tenant=acme',
    'http://127.0.0.1:4000/jwks.json',
    'http://127.8.9.10/jwks.json',
    'http://localhost:4000/jwks.json',
    'http://[::1]:4000/jwks.json',
  ])('accepts %s', (url) => {
    expect(jwksUrlProblem(url)).toBeUndefined();
  });

  it.each(([
    ['http://id.acme.example/jwks.json', /must use https/],
    ['http://10.0.0.5/jwks.json', /must use https/],
    ['http://169.254.169.254/latest/meta-data', /must use https/],
    ['http://localhost.evil.example/jwks.json', /must use https/],
    ['http://127.0.0.1.nip.io/jwks.json', /must use https/],
    ['ftp://id.acme.example/jwks.json', /must use https/],
    ['file:///etc/passwd', /must use https/],
    ['https://user:pass@id.acme.example/jwks.json', /credentials/],
    ['https://id.acme.example/jwks.json#keys', /fragment/],
    ['id.acme.example/jwks.json', /not an absolute URL/],
    ['', /1 to 2048 characters/],
    [`https://id.acme.example/${'a'.repeat(2048)}`, /1 to 2048 characters/],
  ] as [string, RegExp][]).map(([url, problem]) => [url.length > 80 ? `a URL of ${url.length} characters` : JSON.stringify(url), url, problem] as const))(
    'refuses %s', (_name, url, problem) => {
      expect(jwksUrlProblem(url)).toMatch(problem);
    },
  );
});

describe('jwt settings in the publisher repository', () => {
  const publisher = (jwt: Publisher['jwt']): Publisher => ({
    publisherId: 9,
    name: 'Acme',
    tokenHash: 'ab',
    jwt,
    storeKit: { activated: true, migrationInProgress: false },
    ownershipPolicy: 'keep',
  });

  function repositoryWith(item?: Record<string, unknown>) {
    const send = jest.fn(async (_command: unknown) => ({ Item: item }));
    // Not a port: this tests the DynamoDB adapter itself, and DynamoDBDocumentClient is the AWS SDK's class, of which it only calls `send`.
    const repository = new DynamoDbPublisherRepository({ send } as unknown as DynamoDBDocumentClient, 'table');
    return { repository, send };
  }

  it('reads the JWKS URL, issuer, audience and secret reference back', async () => {
    const jwt = { hs256SecretRef: 'file:jwt-9', jwksUrl: 'https://id.acme.example/jwks.json', issuer: 'https://id.acme.example', audience: 'iap' };
    const { repository } = repositoryWith({ publisher: publisher(jwt) });
    await expect(repository.getPublisher(9)).resolves.toMatchObject({ publisherId: 9, jwt });
  });

  it('drops a stored JWKS URL that breaks the rule (fails closed) and keeps the rest', async () => {
    const { repository } = repositoryWith({
      publisher: publisher({ hs256SecretRef: 'file:jwt-9', jwksUrl: 'http://id.acme.example/jwks.json', issuer: 'iss' }),
    });
    expect((await repository.getPublisher(9))?.jwt).toEqual({ hs256SecretRef: 'file:jwt-9', issuer: 'iss' });
  });

  it.each<[string, unknown]>([
    ['a missing jwt map', undefined],
    ['non-string values', { hs256SecretRef: 7, jwksUrl: ['https://x.example'], issuer: null, audience: '' }],
  ])('reads %s as no JWT settings', (_name, stored) => {
    expect(toJwtSettings(stored)).toEqual({});
  });

  it.each(['putPublisher', 'createPublisherIfAbsent'] as const)('%s refuses a plain-http JWKS URL before writing', async (method) => {
    const { repository, send } = repositoryWith();
    await expect(repository[method](publisher({ jwksUrl: 'http://id.acme.example/jwks.json' }))).rejects.toThrow(ConfigurationError);
    await expect(repository[method](publisher({ jwksUrl: 'http://id.acme.example/jwks.json' }))).rejects.toThrow(/JWKS URL must use https/);
    expect(send).not.toHaveBeenCalled();
  });

  it('writes an https JWKS URL and leaves out unset fields', async () => {
    const { repository, send } = repositoryWith();
    await repository.putPublisher(publisher({ jwksUrl: 'https://id.acme.example/jwks.json', issuer: undefined }));
    // The profile is the transaction's first item (the second adds the id to the publisher directory).
    const input = (send.mock.calls[0]?.[0] as { input: { TransactItems: [{ Put: { Item: { publisher: Publisher } } }] } }).input;
    expect(input.TransactItems[0].Put.Item.publisher.jwt).toStrictEqual({ jwksUrl: 'https://id.acme.example/jwks.json' });
  });
});
