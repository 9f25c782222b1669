import { DependencyUnavailableError } from '../../../lambdas/platform/errors';
import { callAws, isTransientAwsError } from '../../../lambdas/platform/aws-errors';

const named = (name: string, extra: Record<string, unknown> = {}) => Object.assign(new Error('x'), { name, ...extra });

describe('AWS errors that mean "try again later"', () => {
  it.each([
    ['throttling', named('ThrottlingException'), true],
    ['provisioned throughput', named('ProvisionedThroughputExceededException'), true],
    ['a 5xx answer', named('InternalServerError', { $metadata: { httpStatusCode: 500 } }), true],
    ['an SDK-marked retryable error', named('Whatever', { $retryable: {} }), true],
    ['connection refused', named('Error', { code: 'ECONNREFUSED' }), true],
    ['connection refused wrapped by the SDK retry layer', new Error('AWS SDK error wrapper for Error: connect ECONNREFUSED 127.0.0.1:1'), true],
    ['a transient cause', named('Outer', { cause: named('ThrottlingException') }), true],
    ['the SDK\'s request timeout (awsClientConfig)', named('TimeoutError', { code: 'ETIMEDOUT' }), true],
    ['the SDK\'s connection timeout', named('TimeoutError'), true],
    ['a service\'s own request timeout', named('RequestTimeoutException', { $metadata: { httpStatusCode: 408 } }), true],
    ['a failed condition', named('ConditionalCheckFailedException', { $metadata: { httpStatusCode: 400 } }), false],
    ['a validation error', named('ValidationException', { $metadata: { httpStatusCode: 400 } }), false],
    ['not an object', 'boom', false],
  ])('%s → %s', (_name, error, transient) => {
    expect(isTransientAwsError(error)).toBe(transient);
  });

  it('callAws turns transient failures into DependencyUnavailableError and lets the others through', async () => {
    await expect(callAws('get', async () => { throw named('ThrottlingException'); })).rejects.toBeInstanceOf(DependencyUnavailableError);
    await expect(callAws('get', async () => { throw named('ValidationException'); })).rejects.toMatchObject({ name: 'ValidationException' });
    await expect(callAws('get', async () => 42)).resolves.toBe(42);
  });
});
