/**
 * CloudWatch metrics of iap-sync, named once: the Lambdas publish them (Powertools Metrics, EMF)
 * and the CDK dashboard and alarms read them. Every metric carries the `service` dimension
 * (POWERTOOLS_SERVICE_NAME = `iap-sync-<stage>`) plus at most the one extra dimension named here.
 */
export const METRICS_NAMESPACE = 'IapSync';

export const METRIC = {
  /** Count; dimension `store` (apple | google). A 202 of a register or transfer. */
  accepted: { name: 'SynchronizationsAccepted', dimension: 'store' },
  /** Count; dimension `result` (the contract's result code, e.g. PURCHASE_SYNCHRONIZED, SYNCHRONIZATION_FAILED). */
  finalized: { name: 'SynchronizationsFinalized', dimension: 'result' },
  /** Count; dimension `store`. One per MarkRetrying (the store was unavailable). */
  storeRetries: { name: 'StoreRetries', dimension: 'store' },
  /** Count; dimension `store`. A store call that failed (5xx, timeout, network, 401/403). */
  storeErrors: { name: 'StoreErrors', dimension: 'store' },
  /** Milliseconds; dimension `store`. Duration of one store verification call. */
  storeLatency: { name: 'StoreLatency', dimension: 'store' },
  /** Count; dimension `outcome` (delivered | retry_scheduled | failed_permanently | endpoint_disabled). */
  webhookAttempts: { name: 'WebhookAttempts', dimension: 'outcome' },
  /** Count, no extra dimension. Open synchronizations whose execution was no longer running (recovery sweeper). */
  stuck: { name: 'StuckSynchronizations', dimension: undefined },
  /** Count; dimension `action` (restarted | failed | republished | resumed: an EXPRESS parked retry started). What the recovery sweeper did. */
  recovered: { name: 'SynchronizationsRecovered', dimension: 'action' },
  /** Count; dimension `outcome` (accepted | duplicate | rejected | ignored): notifications the reconciliation read from Apple's history; `accepted` = lost ones. */
  reconcileNotifications: { name: 'ReconciledNotifications', dimension: 'outcome' },
  /** Count, no extra dimension. Refreshes the reconciliation started (history and due purchases). */
  reconcileRefreshes: { name: 'ReconcileRefreshesStarted', dimension: undefined },
  /** Count, no extra dimension. Due purchases (expiry plus grace passed) handed to the workflow. */
  reconcileDuePurchases: { name: 'ReconcileDuePurchases', dimension: undefined },
  /**
   * Count, no extra dimension. A failed Google acknowledgement attempt: the workflow's (a few within
   * about a minute) and, after those, the reconciliation's attempts at the pending acknowledgement.
   */
  acknowledgeFailures: { name: 'AcknowledgeFailures', dimension: undefined },
  /** Count, no extra dimension, every reconciliation run (zero included): Google acknowledgements still pending after the run. */
  acknowledgementsPending: { name: 'AcknowledgementsPending', dimension: undefined },
  /** Count, no extra dimension. Pending acknowledgements given up: Google's three days ended, or Google refused for good. */
  acknowledgementsGivenUp: { name: 'AcknowledgementsGivenUp', dimension: undefined },
  /** Count, no extra dimension, every run (zero included). What the run could not reconcile. */
  reconcileErrors: { name: 'ReconcileErrors', dimension: undefined },
} as const;
