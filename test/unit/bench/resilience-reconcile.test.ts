import { reconcile, type AcceptedSynchronization, type ReconcileInput } from '../../../bench/resilience/reconcile';

const OK = ['PURCHASE_SYNCHRONIZED'] as const;
const ids = ['s1', 's2', 's3', 's4'];
const accepted: AcceptedSynchronization[] = ids.map((id) => ({ synchronizationId: id, key: `apple:${id}`, expectedResults: OK }));
const finalized = { httpStatus: 200, status: 'finalized', result: 'PURCHASE_SYNCHRONIZED' };

/** Every accepted synchronization finalized, published once and delivered once. */
function clean(): ReconcileInput {
  return {
    accepted,
    statuses: Object.fromEntries(ids.map((id) => [id, finalized])),
    events: ids.map((id) => ({ synchronizationId: id })),
    deliveries: ids.map((id) => ({ synchronizationId: id, webhookId: `msg_${id}`, body: `{"id":"${id}"}` })),
  };
}

describe('reconciliation of accepted against finalized, published and delivered', () => {
  it('counts nothing when every accepted synchronization finalized, was published once and delivered once', () => {
    expect(reconcile(clean())).toMatchObject({ accepted: 4, finalized: 4, published: 4, delivered: 4, lost: 0, duplicated: 0, stuck: 0, unexpectedResults: 0 });
  });

  it('counts a Correlation-Id replay (same id answered twice) once, not as a duplicate', () => {
    const input = { ...clean(), accepted: [...accepted, accepted[0] as AcceptedSynchronization] };
    expect(reconcile(input)).toMatchObject({ accepted: 4, duplicated: 0 });
  });

  it.each([
    ['unknown to the status route', (i: ReconcileInput) => ({ ...i, statuses: { ...i.statuses, s1: { httpStatus: 404 } } }), 'vanished'],
    ['finalized but never published', (i: ReconcileInput) => ({ ...i, events: i.events.filter((e) => e.synchronizationId !== 's1') }), 'not-published'],
    ['published but never delivered to the healthy receiver', (i: ReconcileInput) => ({ ...i, deliveries: (i.deliveries ?? []).filter((d) => d.synchronizationId !== 's1') }), 'not-delivered'],
  ])('counts one lost synchronization when it is %s', (_name, mutate, reason) => {
    const out = reconcile(mutate(clean()));
    expect(out).toMatchObject({ lost: 1, duplicated: 0, stuck: 0 });
    expect(out.findings).toEqual([{ kind: 'lost', synchronizationId: 's1', reason }]);
  });

  it('does not count deliveries when the scenario has no healthy receiver', () => {
    const { deliveries: _ignored, ...input } = clean();
    expect(reconcile(input)).toMatchObject({ delivered: null, lost: 0 });
  });

  it.each([
    ['two events for one synchronization', (i: ReconcileInput) => ({ ...i, events: [...i.events, { synchronizationId: 's2' }] }), 'events'],
    ['two webhook-ids for one synchronization', (i: ReconcileInput) => ({ ...i, deliveries: [...(i.deliveries ?? []), { synchronizationId: 's2', webhookId: 'msg_other', body: '{}' }] }), 'webhook-ids'],
    ['one webhook-id delivered with two different payloads', (i: ReconcileInput) => ({ ...i, deliveries: [...(i.deliveries ?? []), { synchronizationId: 's2', webhookId: 'msg_s2', body: '{"changed":true}' }] }), 'webhook-payloads'],
    ['two 202s for one transaction while its lock was held', (i: ReconcileInput) => ({ ...i, concurrentAcceptsByKey: { 'apple:s2': ['s2', 's3'] } }), 'accepts-per-key'],
  ])('counts one duplicate for %s', (_name, mutate, reason) => {
    const out = reconcile(mutate(clean()));
    expect(out).toMatchObject({ lost: 0, duplicated: 1, stuck: 0 });
    expect(out.findings).toEqual([expect.objectContaining({ kind: 'duplicated', reason })]);
  });

  it('treats the same webhook-id with the same payload twice as an allowed redelivery', () => {
    const input = clean();
    const out = reconcile({ ...input, deliveries: [...(input.deliveries ?? []), { synchronizationId: 's1', webhookId: 'msg_s1', body: '{"id":"s1"}' }] });
    expect(out).toMatchObject({ duplicated: 0, redeliveries: 1 });
  });

  it.each([
    ['still retrying at the deadline', { httpStatus: 200, status: 'retrying' }],
    ['never read', undefined],
    ['answering 503', { httpStatus: 503 }],
  ])('counts a synchronization %s as stuck, not lost', (_name, status) => {
    const input = clean();
    const out = reconcile({ ...input, statuses: { ...input.statuses, s3: status } });
    expect(out).toMatchObject({ stuck: 1, lost: 0, finalized: 3 });
  });

  it('counts a lock still held after SYNCHRONIZATION_FAILED (second register answered 409) as stuck', () => {
    const out = reconcile({ ...clean(), lockChecks: [{ synchronizationId: 's1', httpStatus: 202 }, { synchronizationId: 's2', httpStatus: 409 }] });
    expect(out.stuck).toBe(1);
    expect(out.findings).toEqual([expect.objectContaining({ kind: 'stuck', synchronizationId: 's2', reason: 'lock-held' })]);
  });

  it('counts a finalized synchronization with a result the scenario did not expect', () => {
    const input = clean();
    const out = reconcile({ ...input, statuses: { ...input.statuses, s4: { ...finalized, result: 'SYNCHRONIZATION_FAILED' } } });
    expect(out).toMatchObject({ unexpectedResults: 1, lost: 0, stuck: 0 });
  });

  it('adds the categories up over several synchronizations and reports events nobody accepted', () => {
    const input = clean();
    const out = reconcile({
      ...input,
      statuses: { ...input.statuses, s1: { httpStatus: 200, status: 'processing' }, s2: { httpStatus: 404 } },
      events: [...input.events.filter((e) => e.synchronizationId !== 's3'), { synchronizationId: 's4' }, { synchronizationId: 'phantom' }],
    });
    expect(out).toMatchObject({ stuck: 1, lost: 2, duplicated: 1, finalized: 2, unaccountedEvents: 1 });
  });
});
