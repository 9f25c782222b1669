import { required } from '../platform/config';
import { systemClock } from '../platform/clock';
import { SfnWorkflowStarter } from './adapters/sfn-workflow-starter';
import { acceptNotice, type NoticeInput } from './domain/accept-notice';
import type { Runtime } from './runtime';

/**
 * The notification routes' intake (the lifecycle slice's NoticeIntake): records the notice and
 * starts its refresh on this stack's workflow. Its own module, so functions that never take a
 * notification do not bundle the Step Functions client for it.
 */
export function createNoticeIntake(runtime: Runtime): { accept(notice: NoticeInput): Promise<'accepted' | 'duplicate'> } {
  const workflow = new SfnWorkflowStarter(required(runtime.config, 'STATE_MACHINE_ARN'));
  return { accept: (notice) => acceptNotice({ ...runtime, workflow, clock: systemClock }, notice) };
}
