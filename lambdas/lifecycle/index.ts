export { EXPRESS_ENDED_AFTER_SECONDS } from './domain/recover-synchronizations';
