/**
 * What an activity's failed attempt tells its workflow (signal `stepTrouble`, sent by the activity interceptor in
 * src/activities/interceptors.ts) so that the workflow's `currentStep` query and memo show the step in trouble in
 * the Temporal UI, as the job views do from Temporal's pending-activity info (src/api/pendingSteps.ts).
 * Shared by activities and workflows, so it imports nothing.
 *
 * Only the service's own failure message and type travel: FHIR errors carry the status, the OperationOutcome text
 * and URLs without query strings, never tokens or resources (the same text Temporal already stores as the
 * attempt's failure).
 */
export const STEP_TROUBLE_SIGNAL = 'stepTrouble';

export interface StepTrouble {
  /** The activity type, e.g. kickOffBulkExport. */
  activity: string;
  /** The attempt that failed (1 = the first try). */
  failedAttempt: number;
  message: string;
  type?: string;
  /** When Temporal will start the next attempt (ISO instant, computed from the retry policy). */
  nextRetryAt?: string;
}

/** The steps of a job as an operator names them (the same names as the job views'). */
export const STEP_NAMES: Record<string, string> = {
  prepareBulkExport: 'prepare',
  kickOffBulkExport: 'kick-off',
  checkBulkExportStatus: 'status-poll',
  downloadBulkFile: 'download',
  finishBulkExport: 'finish',
  cancelBulkExportOnServer: 'cancel-on-server',
  planSync: 'plan',
  planAndSyncFirstPages: 'first-pages',
  syncFirstPages: 'first-pages',
  syncResourceType: 'search',
  completeSyncJob: 'finish',
  getCapabilities: 'capabilities',
};
