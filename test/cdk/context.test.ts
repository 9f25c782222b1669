import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { CONTEXT_KEYS, ContextError, stackPropsFromContext, type ContextKey } from '../../lib/context';

// No synth here: these are the context keys of bin/app.ts, read into stack props.

const read = (context: Partial<Record<ContextKey, unknown>>) => (key: ContextKey) => context[key];

describe('stack props from the CDK context', () => {
  it('default to a dev EXPRESS stack with the stack defaults for everything else', () => {
    expect(stackPropsFromContext(read({}))).toEqual({ stage: 'dev', workflowType: 'EXPRESS' });
  });

  it('keep STANDARD selectable (-c workflowType=STANDARD)', () => {
    expect(stackPropsFromContext(read({ workflowType: 'STANDARD' }))).toEqual({ stage: 'dev', workflowType: 'STANDARD' });
  });

  it("ship cdk.json with EXPRESS, the context's own default, so a plain `cdk deploy` and `npm start` run the same type", () => {
    const cdkJson = JSON.parse(readFileSync(path.resolve(__dirname, '..', '..', 'cdk.json'), 'utf8')) as { context: Record<string, unknown> };
    expect(cdkJson.context.workflowType).toBe('EXPRESS');
    expect(CONTEXT_KEYS.workflowType.default).toBe('EXPRESS');
    const localMain = readFileSync(path.resolve(__dirname, '..', '..', 'local', 'main.ts'), 'utf8');
    expect(localMain).toMatch(/'workflow-type': \{ type: 'string', default: 'EXPRESS' \}/);
  });

  it('read every key given on the command line (strings)', () => {
    const props = stackPropsFromContext(
      read({
        stage: 'prod',
        workflowType: 'EXPRESS',
        appleOnlineChecks: 'false',
        retryMaxAttempts: '3',
        retryBaseSeconds: '10',
        throttleBurstLimit: '40',
        routeThrottles: '{"POST /storekit2/purchases":{"burstLimit":50,"rateLimit":20.5}}',
        workflowLogLevel: 'ERROR',
        workflowLogExecutionData: 'true',
        alarmTopicArn: 'arn:aws:sns:eu-west-1:123456789012:alarms',
        webhookMaxConcurrency: '3',
        existingTableName: 'IapSync-prod-DataTable1A2B3C4D-KEPT',
        apiDomainName: 'api.example.com',
        apiCertificateArn: 'arn:aws:acm:eu-west-1:123456789012:certificate/abc',
      }),
    );
    expect(props).toEqual({
      stage: 'prod',
      workflowType: 'EXPRESS',
      appleOnlineChecks: false,
      retry: { maxAttempts: 3, baseSeconds: 10, maxWaitSeconds: 960 },
      throttle: { burstLimit: 40, rateLimit: 100 },
      routeThrottles: { 'POST /storekit2/purchases': { burstLimit: 50, rateLimit: 20.5 } },
      workflowLogging: { level: 'ERROR', includeExecutionData: true },
      alarmTopicArn: 'arn:aws:sns:eu-west-1:123456789012:alarms',
      webhookMaxConcurrency: 3,
      existingTableName: 'IapSync-prod-DataTable1A2B3C4D-KEPT',
      customDomain: { domainName: 'api.example.com', certificateArn: 'arn:aws:acm:eu-west-1:123456789012:certificate/abc' },
    });
  });

  it.each(['dev', 'prod', 'staging', 'prod-eu', 'qa2', 'a', 'abcdefghij-klmnopqrs'])('accept the stage name %s', (stage) => {
    expect(stackPropsFromContext(read({ stage })).stage).toBe(stage);
  });

  it('read values of cdk.json (numbers and objects)', () => {
    const props = stackPropsFromContext(
      read({ retryMaxAttempts: 4, throttleRateLimit: 7.5, routeThrottles: { 'GET /openapi.json': { burstLimit: 5, rateLimit: 1 } } }),
    );
    expect(props).toMatchObject({
      retry: { maxAttempts: 4 },
      throttle: { burstLimit: 200, rateLimit: 7.5 },
      routeThrottles: { 'GET /openapi.json': { burstLimit: 5, rateLimit: 1 } },
    });
  });

  it.each([
    ['STANDARD', 'ERROR'],
    ['EXPRESS', 'ALL'],
  ])('keep the %s log level default when only execution data is asked for', (workflowType, level) => {
    expect(stackPropsFromContext(read({ workflowType, workflowLogExecutionData: 'true' })).workflowLogging).toEqual({
      level,
      includeExecutionData: true,
    });
  });

  it.each<[string, Partial<Record<ContextKey, unknown>>, RegExp]>([
    ...['Prod', 'prod_eu', '2prod', '-dev', 'dev-', 'prod--eu', 'prod.eu', 'abcdefghij-klmnopqrst'].map(
      (stage) => [`the stage name ${stage}`, { stage }, new RegExp(`stage=${stage.replace('.', '\\.')} must be lowercase letters, digits and single dashes`)] as [string, Partial<Record<ContextKey, unknown>>, RegExp],
    ),
    ['a webhook concurrency that is not a number', { webhookMaxConcurrency: 'many' }, /webhookMaxConcurrency=many is not an integer/],
    ['a custom domain without its certificate', { apiDomainName: 'api.example.com' }, /apiDomainName and apiCertificateArn go together/],
    ['a certificate without its domain', { apiCertificateArn: 'arn:aws:acm:eu-west-1:123456789012:certificate/abc' }, /go together/],
    ['an unknown workflow type', { workflowType: 'express' }, /workflowType=express/],
    ['a log level Step Functions does not have', { workflowLogLevel: 'DEBUG' }, /workflowLogLevel=DEBUG/],
    ['a retry count that is not an integer', { retryMaxAttempts: '2.5' }, /retryMaxAttempts=2.5 is not an integer/],
    ['a rate limit that is not a number', { throttleRateLimit: 'fast' }, /throttleRateLimit=fast is not a number/],
    ['route throttles that are not JSON', { routeThrottles: '{POST: 1}' }, /routeThrottles is not JSON/],
    ['route throttles that are a list', { routeThrottles: '[]' }, /must be a JSON object/],
    ['a route throttle without its rate', { routeThrottles: '{"GET /openapi.json":{"burstLimit":1}}' }, /needs numeric burstLimit and rateLimit/],
  ])('refuse %s', (_name, context, message) => {
    expect(() => stackPropsFromContext(read(context))).toThrow(ContextError);
    expect(() => stackPropsFromContext(read(context))).toThrow(message);
  });

  it('name no key that could point a stack at the store simulator, local secrets or private webhook receivers', () => {
    expect(Object.keys(CONTEXT_KEYS).filter((key) => /url|endpoint|host|simulator|secret|private|local/i.test(key))).toEqual([]);
  });

  it('are all documented in bin/app.ts', () => {
    const app = readFileSync(path.resolve(__dirname, '..', '..', 'bin', 'app.ts'), 'utf8');
    for (const key of Object.keys(CONTEXT_KEYS)) expect(app).toContain(key);
  });
});
