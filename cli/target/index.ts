/**
 * Which iap-sync stack the command line manages, and how it reaches that stack's data and secrets:
 * the local stack of `npm start` (./local) by default, or a deployed one with `--stack` (./deployed).
 * Commands and cli/main.ts import targets from here only.
 */
import { UsageError } from '../errors';
import { deployedTarget } from './deployed';
import { DEFAULT_DATA_DIR, localTarget } from './local';
import type { StackTarget } from './stack-target';

export type { StackTarget } from './stack-target';
export { DEFAULT_DATA_DIR, LOCAL_JSON, RUNTIME_JSON, localTarget } from './local';
export { deployedTarget, type DeployedIo, type StackOutputs } from './deployed';

export interface TargetOptions {
  dataDir?: string;
  stack?: string;
  region?: string;
}

/** `--stack` selects a deployed stack; otherwise the local one of `--data-dir`. */
export async function resolveTarget(options: TargetOptions): Promise<StackTarget> {
  if (options.stack === undefined) {
    if (options.region !== undefined) throw new UsageError('--region needs --stack NAME (the local stack has no region)');
    return localTarget(options.dataDir ?? DEFAULT_DATA_DIR);
  }
  if (options.dataDir !== undefined) throw new UsageError('--data-dir is for the local stack; do not combine it with --stack');
  return deployedTarget(options.stack, options.region);
}
