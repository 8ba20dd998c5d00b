import type { PracticeSpec } from './practices';

/**
 * Shared types of the FHIR sandbox. The sandbox stands for somebody else's server: nothing here is imported
 * from (or by) the rest of `src/` except through `src/sandbox/index.ts`.
 */

export const RESOURCE_TYPES = [
  'Patient',
  'Observation',
  'Condition',
  'MedicationRequest',
  'AllergyIntolerance',
  'Immunization',
  'Procedure',
  'DiagnosticReport',
  'CarePlan',
  'Encounter',
  'Communication',
  'Task',
  // More Patient-compartment types: served (and listed in the CapabilityStatement) but empty unless
  // `resourcesPerPatient` names them, so the data of the 12 types above stay what they were.
  'CareTeam',
  'DocumentReference',
  'Device',
] as const;

/** The types beyond the first 12: none per patient unless `resourcesPerPatient` gives a number for them by name. */
export const EXTRA_TYPES = ['CareTeam', 'DocumentReference', 'Device'] as const;

export type ResourceType = (typeof RESOURCE_TYPES)[number];

/** Types that hang off a patient (every supported type except Patient itself). */
export type ClinicalType = Exclude<ResourceType, 'Patient'>;

export function isResourceType(value: string): value is ResourceType {
  return (RESOURCE_TYPES as readonly string[]).includes(value);
}

/** A FHIR resource as JSON. Kept loose on purpose: the store serves whatever it was given. */
export interface FhirResource {
  resourceType: string;
  id?: string;
  meta?: { versionId?: string; lastUpdated?: string; [k: string]: unknown };
  [key: string]: unknown;
}

export interface JsonWebKeySet {
  keys: JsonWebKeyLike[];
}

/** A public JWK as registered by a backend client (RSA or EC). */
export interface JsonWebKeyLike {
  kty: string;
  kid?: string;
  alg?: string;
  use?: string;
  [key: string]: unknown;
}

export interface ClientRegistration {
  clientId: string;
  /** Confidential symmetric client when set; public client when neither secret nor jwks are set. */
  clientSecret?: string;
  redirectUris?: string[];
  /** Confidential asymmetric client (private_key_jwt, backend services): the public keys inline. */
  jwks?: JsonWebKeySet;
  /**
   * Or the URL of the client's key set, fetched at each assertion (loopback only: the sandbox must not reach
   * out to the network). An assertion's `jku`, when present, must equal it. Exclusive with `jwks`.
   */
  jwksUrl?: string;
  /** Scopes the client may be granted (exact strings). Unset: any syntactically valid scope. */
  scopes?: string[];
}

export type RateLimitConfig =
  | { mode: 'token-bucket'; ratePerSecond: number; burst: number; dailyLimit?: number }
  | {
      mode: 'fixed-window';
      limit: number;
      windowSeconds: number;
      /** true: fixed windows (blocked until the window ends); false: sliding window over the last windowSeconds. */
      blockRestOfWindow?: boolean;
      dailyLimit?: number;
    }
  | { mode: 'daily-only'; dailyLimit: number };

export type PathKind =
  | 'metadata'
  | 'smart-config'
  | 'authorize'
  | 'token'
  | 'read'
  | 'search'
  | 'export-kickoff'
  | 'export-status'
  | 'bulk-file'
  | 'other';

export const PATH_KINDS: readonly PathKind[] = [
  'metadata',
  'smart-config',
  'authorize',
  'token',
  'read',
  'search',
  'export-kickoff',
  'export-status',
  'bulk-file',
  'other',
];

export interface FaultSettings {
  /** Probability (0..1) that a request gets a 5xx answer. Seeded, so runs are repeatable. */
  errorRate: number;
  /** The next N requests get a 5xx answer. */
  errorBurst: number;
  /** Every request gets a 5xx answer until this instant (epoch ms; 0 = off): a server down for a while. */
  errorUntil: number;
  /** Statuses used for injected 5xx answers (picked with the seeded RNG). */
  errorStatuses: number[];
  /** Extra latency added to every request (ms). */
  delayMs: number;
  /** Probability (0..1) that the connection is destroyed mid-response. */
  dropRate: number;
  /** The next N responses are cut off mid-response. */
  dropNext: number;
  /** The next N requests get 429. */
  storm429: number;
  /** Retry-After (seconds) sent with storm 429s. */
  storm429RetryAfterSeconds: number;
  /**
   * A raw Retry-After value sent with storm 429s instead of storm429RetryAfterSeconds, as real servers have sent
   * them: epoch milliseconds ('1796159374838'), negative, garbage, an HTTP date far in the future. '' = unset.
   */
  storm429RetryAfter: string;
  /**
   * Searches are cached for this many seconds, as a widely used FHIR server does by default (60 s): a repeated
   * identical search (same query, same token's compartment) within that time gets the cached Bundle, unless the
   * request carries `Cache-Control: no-cache` (or `Pragma: no-cache`). 0 = off.
   */
  searchCacheSeconds: number;
  /**
   * The server's clock runs this many ms ahead (positive) or behind (negative) the real one: resources changed
   * from now on, Bundle meta.lastUpdated and export transaction times carry the skewed time.
   */
  clockSkewMs: number;
  /**
   * Search `next` links point at this origin instead of the server's own (a server or proxy that pages onto another
   * host, e.g. `http://127.0.0.1:9`): a client must refuse to follow them. '' = the server's own origin.
   */
  nextLinkOrigin: string;
  /** Access token lifetime for newly issued user tokens (seconds). */
  accessTokenTtlSeconds: number;
  /** Access token lifetime for newly issued backend-services tokens (seconds). */
  backendTokenTtlSeconds: number;
  /** Which kinds of request the faults above apply to. */
  applyTo: PathKind[];
}

export interface ExportSettings {
  /** How long a job stays 202 before completing (ms). */
  durationMs: number;
  /** Jobs never complete (stay 202 forever). */
  neverFinish: boolean;
  /**
   * Jobs complete on their Nth status poll, however long it took (0 = off: durationMs decides). For clients whose
   * clock is not the wall clock, such as a workflow on a time-skipping test server.
   */
  finishAfterPolls: number;
  /** The job fails: status answers 500 with a (non-transient) OperationOutcome once it would have completed. */
  failJobs: boolean;
  /** The next N status polls answer with an error (see statusErrorKind). */
  statusErrors: number;
  /** 'transient': 500 + OperationOutcome issue.code=transient; '500'/'503': plain 5xx OperationOutcome (code exception). */
  statusErrorKind: 'transient' | '500' | '503';
  /** 429 (with Retry-After) when a job is polled again sooner than this (ms). 0 = off. */
  minPollIntervalMs: number;
  /** Retry-After on 202 status answers (seconds); raised to minPollIntervalMs (rounded up) unless retryAfterBelowMinPoll. */
  retryAfterSeconds: number;
  /** Lie: send retryAfterSeconds even when it is shorter than minPollIntervalMs (a client that obeys gets 429s). */
  retryAfterBelowMinPoll: boolean;
  /** Form of Retry-After on status answers. */
  retryAfterFormat: 'seconds' | 'http-date';
  /**
   * The manifest's requiresAccessToken. 'auto' follows the file origin, as real servers do: signed URLs on the
   * storage host → false, files on the FHIR origin ('same', 'redirect') → true. `true` with 'storage' is the
   * explicit token-leak set-up (a manifest that asks for the token on a foreign host).
   */
  requiresAccessToken: boolean | 'auto';
  /** 'same': files on this server; 'storage': manifest URLs on the storage host; 'redirect': same-origin URLs that 302 to the storage host. */
  fileOrigin: 'same' | 'storage' | 'redirect';
  maxResourcesPerFile: number;
  /** Malformed NDJSON lines injected into the first file of each type. */
  malformedLines: number;
  /** The first N resources of each type are written a second time (in another file). */
  duplicateResources: number;
  /** N resources (of the first exported type, or of each of `errorTypes`) fail: left out of the output, reported in an error file. */
  errorResources: number;
  /** The types whose first `errorResources` resources fail, one error file per type ([] = the first exported type only). */
  errorTypes: string[];
  /** Files (and the manifest) expire this long after completion (seconds); then 410. */
  fileTtlSeconds: number;
  /** 429 on kick-off when this many jobs are already running. 0 = unlimited. */
  maxConcurrentJobs: number;
  /** The kick-off's Content-Location (status URL) points at this origin instead of the server's own. '' = own. */
  statusUrlOrigin: string;
}

export interface SandboxOptions {
  port: number;
  host: string;
  /** Absolute public origin (e.g. http://127.0.0.1:8090). Set by startSandbox after listening. */
  publicUrl?: string;
  seed: number;
  patients: number;
  /** Resources of each clinical type per patient (a number, or per type). */
  resourcesPerPatient: number | Partial<Record<ClinicalType, number>>;
  /** The first N patients have `largePatientFactor` times the resources of each clinical type (0 = none). */
  largePatients?: number;
  /** How many times larger those patients are (10). */
  largePatientFactor?: number;
  /**
   * More practices, each with its own base URL `/fhir/r4/{code}`, patients and quota (see practices.ts). The
   * server itself is the default practice, at `/fhir/r4`.
   */
  practices?: PracticeSpec[];
  /** Data are spread over the 3 years before this instant (ISO). Fixed by default so data are deterministic. */
  dataEpoch: string;
  clientId: string;
  clientSecret: string;
  redirectUris: string[];
  /** Extra clients registered at start. */
  clients: ClientRegistration[];
  accessTokenTtlSeconds: number;
  backendTokenTtlSeconds: number;
  refreshTokenTtlSeconds: number;
  authCodeTtlSeconds: number;
  defaultPageSize: number;
  maxPageSize: number;
  rateLimit: RateLimitConfig | null;
  faults: Partial<FaultSettings>;
  export: Partial<ExportSettings>;
  /**
   * Client assertions (private_key_jwt) must carry `typ: "JWT"` in their header, as SMART Backend Services fixes
   * it (400 invalid_client otherwise). false: any or no typ is accepted (for tests of other rules).
   */
  requireAssertionTyp: boolean;
  /** Bound on fetching a client's registered JWKS URL (ms). */
  jwksFetchTimeoutMs: number;
  /** Start the second listener acting as a storage host for bulk files (needed for fileOrigin storage/redirect). */
  storageHost: boolean;
  /**
   * Types this server does not have: absent from the CapabilityStatement, 404 on read and search, and a kick-off
   * naming one in `_type` is refused with 400 `The requested resource type "X" is not available on this server`.
   */
  unsupportedTypes: ResourceType[];
  /**
   * Types that cannot be searched by patient: the CapabilityStatement lists no patient/subject parameter for them,
   * a search by patient or subject is refused (400), and so is a Patient or Group kick-off naming one in `_type`
   * (and one without `_type` leaves them out).
   */
  noPatientSearchTypes: ResourceType[];
  /**
   * An open server: no authorization at all (requests without a token are served as if by a system/*.read
   * client), no SMART endpoints in the CapabilityStatement, and `.well-known/smart-configuration` answers 404.
   */
  openMode: boolean;
}
