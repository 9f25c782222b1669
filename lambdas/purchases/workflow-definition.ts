// Only the one field: esbuild then bundles this number, not the whole ASL document.
import { TimeoutSeconds } from '../../statemachines/purchase-sync.asl.json';

/** The workflow's own timeout, read from the ASL so the lock lease can never be shorter. */
export const WORKFLOW_TIMEOUT_SECONDS: number = TimeoutSeconds;

/** Lease of a purchase lock: the workflow timeout plus a margin for start-up and finalize retries. */
export const LOCK_LEASE_SECONDS = WORKFLOW_TIMEOUT_SECONDS + 600;
