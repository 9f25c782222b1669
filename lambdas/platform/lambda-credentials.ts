/**
 * Stands in for `@aws-sdk/credential-provider-node` in the deployed bundles (an esbuild alias in
 * lib/constructs/lambda-function.ts). Lambda always hands a function its role's credentials in the
 * environment, so the SSO, INI, process, web-identity and IMDS providers of the default chain — and
 * the STS/SSO clients they bundle — are dead weight in a cold start. Not used by `npm start` or tests.
 */
interface EnvCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  expiration?: Date;
}

export const defaultProvider =
  () =>
  async (): Promise<EnvCredentials> => {
    const accessKeyId = process.env.AWS_ACCESS_KEY_ID;
    const secretAccessKey = process.env.AWS_SECRET_ACCESS_KEY;
    if (!accessKeyId || !secretAccessKey) {
      throw Object.assign(new Error('AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set (this bundle expects the Lambda runtime).'), {
        name: 'CredentialsProviderError',
      });
    }
    const expiration = process.env.AWS_CREDENTIAL_EXPIRATION;
    return {
      accessKeyId,
      secretAccessKey,
      ...(process.env.AWS_SESSION_TOKEN ? { sessionToken: process.env.AWS_SESSION_TOKEN } : {}),
      ...(expiration ? { expiration: new Date(expiration) } : {}),
    };
  };
