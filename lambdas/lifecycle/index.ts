export { EXPRESS_ENDED_AFTER_SECONDS } from './domain/recover-synchronizations';
export type { AppleNotificationVerifier, NoticeIntake, PurchaseChangeNotice } from './ports';
export { AppleNotificationBody, GooglePushBody, NotificationAcknowledged, PublisherIdPathParam } from './schemas';
export type { ReconcileOutcome, ReconcileReport, ReconcileSettings, StartedRefresh } from './domain/reconcile-purchases';
export type { AppleNotificationHistory, DuePurchase, HistoryCursor, PublisherDirectory, ReconcileRepository } from './ports';
