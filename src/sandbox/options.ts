import { isResourceType, type ExportSettings, type FaultSettings, type SandboxOptions } from './types';

export const DEFAULT_FAULTS: FaultSettings = {
  errorRate: 0,
  errorBurst: 0,
  errorUntil: 0,
  errorStatuses: [500, 502, 503, 504],
  delayMs: 0,
  dropRate: 0,
  dropNext: 0,
  storm429: 0,
  storm429RetryAfterSeconds: 1,
  storm429RetryAfter: '',
  searchCacheSeconds: 0,
  clockSkewMs: 0,
  nextLinkOrigin: '',
  accessTokenTtlSeconds: 3600,
  backendTokenTtlSeconds: 300,
  applyTo: ['read', 'search', 'export-kickoff', 'export-status', 'bulk-file'],
};

export const DEFAULT_EXPORT: ExportSettings = {
  durationMs: 2000,
  neverFinish: false,
  finishAfterPolls: 0,
  failJobs: false,
  statusErrors: 0,
  statusErrorKind: 'transient',
  minPollIntervalMs: 0,
  retryAfterSeconds: 1,
  retryAfterBelowMinPoll: false,
  retryAfterFormat: 'seconds',
  requiresAccessToken: 'auto',
  fileOrigin: 'same',
  maxResourcesPerFile: 10000,
  malformedLines: 0,
  duplicateResources: 0,
  errorResources: 0,
  errorTypes: [],
  fileTtlSeconds: 3600,
  maxConcurrentJobs: 0,
  statusUrlOrigin: '',
};

export const DEFAULT_OPTIONS: SandboxOptions = {
  port: 8090,
  host: '127.0.0.1',
  seed: 42,
  patients: 5,
  resourcesPerPatient: 3,
  dataEpoch: '2026-11-01T00:00:00.000Z',
  clientId: 'ehr-sync-local',
  clientSecret: 'ehr-sync-local-secret',
  redirectUris: ['http://127.0.0.1:3000/api/ehr/callback'],
  clients: [],
  accessTokenTtlSeconds: 3600,
  backendTokenTtlSeconds: 300,
  refreshTokenTtlSeconds: 90 * 24 * 3600,
  authCodeTtlSeconds: 60,
  defaultPageSize: 50,
  maxPageSize: 200,
  rateLimit: null,
  faults: {},
  export: {},
  requireAssertionTyp: true,
  jwksFetchTimeoutMs: 2000,
  storageHost: true,
  unsupportedTypes: [],
  noPatientSearchTypes: [],
  openMode: false,
};

export function resolveOptions(partial: Partial<SandboxOptions> = {}): SandboxOptions {
  const merged: SandboxOptions = { ...DEFAULT_OPTIONS, ...stripUndefined(partial) };
  if (!Number.isInteger(merged.patients) || merged.patients < 1 || merged.patients > 999_999) {
    throw new Error(`patients must be an integer in 1..999999 (got ${merged.patients})`);
  }
  if (merged.maxPageSize < 1 || merged.defaultPageSize < 1) throw new Error('page sizes must be positive');
  if (Number.isNaN(Date.parse(merged.dataEpoch))) throw new Error(`dataEpoch is not a date: ${merged.dataEpoch}`);
  for (const t of [...merged.unsupportedTypes, ...merged.noPatientSearchTypes]) {
    if (!isResourceType(t)) throw new Error(`unsupportedTypes/noPatientSearchTypes: ${String(t)} is not a sandbox type`);
  }
  if (merged.unsupportedTypes.includes('Patient') || merged.noPatientSearchTypes.includes('Patient')) throw new Error('Patient cannot be unsupported');
  return merged;
}

export function stripUndefined<T extends object>(value: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(value)) {
    if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  }
  return out;
}
