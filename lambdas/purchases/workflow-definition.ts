import asl from '../../statemachines/purchase-sync.asl.json';

/** The workflow's own timeout, read from the ASL so the lock lease can never be shorter. */
export const WORKFLOW_TIMEOUT_SECONDS: number = asl.TimeoutSeconds;

/** Lease of a purchase lock: the workflow timeout plus a margin for start-up and finalize retries. */
export const LOCK_LEASE_SECONDS = WORKFLOW_TIMEOUT_SECONDS + 600;
