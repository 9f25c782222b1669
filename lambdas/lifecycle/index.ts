export { EXPRESS_ENDED_AFTER_SECONDS } from './domain/recover-synchronizations';
export type { AppleNotificationVerifier, NoticeIntake, PurchaseChangeNotice } from './ports';
export { AppleNotificationBody, NotificationAcknowledged, PublisherIdPathParam } from './schemas';
