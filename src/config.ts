import { z } from 'zod';
import { MAX_CLIENT_ID_LENGTH } from './auth/clientId';
import { ConfigError } from './errors';

/**
 * The whole environment, parsed once at start-up. A bad or missing value stops the process with a message that
 * names the variable; nothing else in the code reads process.env.
 */
const port = (fallback: number) => z.coerce.number().int().min(0).max(65535).default(fallback);
const csv = z
  .string()
  .transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean));

const base64Key = z
  .string({ error: 'is required: 32 random bytes, base64 (openssl rand -base64 32)' })
  .refine((s) => Buffer.from(s, 'base64').length === 32, { message: 'must be 32 bytes encoded as base64 (openssl rand -base64 32)' })
  .transform((s) => Buffer.from(s, 'base64'));

const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });

/** What the worker needs. The API needs all of it and its own credentials on top (ApiEnvSchema). */
export const WorkerEnvSchema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),

  API_HOST: z.string().default('127.0.0.1'),
  API_PORT: port(3000),
  // Bounds on receiving a request (src/api/serverTimeouts.ts). With the API's other settings for one config type.
  /** The request line and headers must arrive within this (Node's headersTimeout); then 408. */
  API_HEADERS_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(10_000),
  /** The whole request, body included, must arrive within this (Node's requestTimeout); then 408. */
  API_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).max(3_600_000).default(30_000),
  /** A request body may pause at most this long between two chunks; then 408. */
  API_BODY_IDLE_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(10_000),
  /** Public base URL of this API (used in links it returns). */
  API_PUBLIC_URL: httpUrl.optional(),
  ENCRYPTION_KEY: base64Key,

  MONGODB_URI: z.string().regex(/^mongodb(\+srv)?:\/\//, 'must be a mongodb:// or mongodb+srv:// URI').default('mongodb://127.0.0.1:27117/'),
  MONGODB_DB: z.string().regex(/^[A-Za-z0-9_-]{1,60}$/, 'must be a plain database name').default('ehr_sync'),

  TEMPORAL_ADDRESS: z.string().regex(/^[^\s:]+:\d+$/, 'must be host:port').default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TEMPORAL_TASK_QUEUE: z.string().min(1).default('ehr-sync'),
  TEMPORAL_UI_URL: httpUrl.default('http://127.0.0.1:8233'),

  ECLINICALWORKS_CLIENT_ID: z
    .string()
    .min(1, 'is required (the client id of your eClinicalWorks app)')
    .max(MAX_CLIENT_ID_LENGTH, `must be at most ${MAX_CLIENT_ID_LENGTH} characters`),
  ECLINICALWORKS_CLIENT_SECRET: z.string().min(1).optional(),
  ECLINICALWORKS_REDIRECT_URI: httpUrl,
  ECLINICALWORKS_FHIR_ENDPOINT: httpUrl.default('https://fhir.eclinicalworks.com/fhir/r4'),

  /** JSON file with more providers or overrides of the built-in ones (see README "Providers"). */
  EHR_PROVIDERS_FILE: z.string().optional(),
  /** The same as inline JSON. */
  EHR_PROVIDERS_JSON: z.string().optional(),

  /**
   * Hosts that may be reached over plain http (the local sandbox). Everything else must be https, as SMART
   * requires. Loopback only by default.
   */
  ALLOW_INSECURE_HOSTS: csv.default(['127.0.0.1', 'localhost', '[::1]']),

  /** How long the API waits for a short workflow (capabilities, small syncs) before answering 202. */
  API_WORKFLOW_WAIT_MS: z.coerce.number().int().min(0).max(120000).default(20000),

  /**
   * The shortest interval a sync schedule may have. Each run asks the FHIR server for every selected type, so a
   * tiny interval spends the shared rate budget on empty searches; tests trigger runs instead of lowering it.
   */
  SYNC_SCHEDULE_MIN_INTERVAL_SECONDS: z.coerce.number().int().min(10).max(86400).default(300),
  /**
   * Bearer token a Prometheus scraper sends to /metrics (API and worker). On the API, API keys are accepted too;
   * the worker's /metrics is open without it (it listens on loopback by default). Empty = unset.
   */
  METRICS_TOKEN: z.preprocess((v) => (v === '' ? undefined : v), z.string().min(16, 'must be at least 16 characters').optional()),
  /**
   * Level of the Temporal core's (Rust) log lines that the worker forwards into its JSON log (the SDK's own
   * TypeScript lines follow LOG_LEVEL). DEBUG is verbose; for diagnosing connection or polling problems.
   */
  TEMPORAL_CORE_LOG_LEVEL: z.enum(['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR']).default('WARN'),
  /** The worker's own /metrics listener (FHIR, write and job metrics live in the worker). 0 = off. */
  WORKER_METRICS_PORT: port(9464),
  WORKER_METRICS_HOST: z.string().min(1).default('127.0.0.1'),
  /**
   * Upper bound of every wait taken from a server's Retry-After (limiter blocks, in-call retries, bulk status polls).
   * Servers have sent epoch milliseconds there; a longer or nonsensical value is clamped and the clamp reported.
   */
  RETRY_AFTER_MAX_SECONDS: z.coerce.number().int().min(1).max(86400).default(600),
  /**
   * How the shared limiter shares one quota (a practice's) between connections: `connection` (default) in turn,
   * so a connection with more requests in flight does not take more of it; `fifo` first come, first served (the
   * behaviour before; kept to measure the difference).
   */
  RATE_LIMIT_FAIRNESS: z.enum(['connection', 'fifo']).default('connection'),
  /**
   * Longest a request waits in the shared limiter for its place. A longer wait (a quota used up for the day, a long
   * block) fails the request with a retryable FHIR_RATE_LIMITED instead, so the step is retried by Temporal rather than
   * holding an activity slot and its heartbeat for hours.
   */
  RATE_LIMIT_MAX_WAIT_SECONDS: z.coerce.number().int().min(1).max(3600).default(120),
  /**
   * Activities one worker process runs at once. They mostly wait (on the shared limiter, FHIR, MongoDB), and a
   * fleet needs at least one request in flight per practice to use every practice's quota: raise it with the
   * number of practices a worker serves (memory: about one search page per activity).
   */
  WORKER_MAX_CONCURRENT_ACTIVITIES: z.coerce.number().int().min(1).max(2000).default(20),
  /**
   * A workflow bundle built ahead of time (`npm run build` writes dist/workflow-bundle.js; `npm start` and the image
   * set this). Unset, the worker bundles src/workflows with webpack as it starts: slower, and that build is the
   * highest point of an idle worker's memory (237 MB against 191 MB with the prebuilt bundle, measured).
   */
  WORKFLOW_BUNDLE_PATH: z.string().min(1).optional(),
  /**
   * Without a Bundle meta.lastUpdated, a type's sync point is the time its first search page was requested minus
   * this margin: the FHIR server's clock may run behind ours, and a change it stamps earlier must not be skipped.
   */
  SYNC_CLOCK_SKEW_SECONDS: z.coerce.number().int().min(0).max(86400).default(300),
  /**
   * SMART discovery of a FHIR server (.well-known/smart-configuration, then /metadata), retries included, ends
   * within this; a host that accepts connections and never answers then fails fast with a 504 naming it.
   */
  DISCOVERY_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(10_000),
  /** A discovered SMART configuration is reused this long per base URL (per process). 0 = always ask. */
  DISCOVERY_CACHE_TTL_SECONDS: z.coerce.number().int().min(0).max(86400).default(600),
  /** A failed discovery is answered from memory this long without asking the host again. 0 = off. */
  DISCOVERY_FAILURE_CACHE_SECONDS: z.coerce.number().int().min(0).max(3600).default(30),
  /**
   * GET …/capabilities answers from a per-connection cache in MongoDB this long before asking the FHIR server again
   * (`?refresh=true` asks at once). 0 = no cache (concurrent calls still share one workflow).
   */
  CAPABILITIES_CACHE_TTL_SECONDS: z.coerce.number().int().min(0).max(7 * 86400).default(3600),
  /**
   * DELETE of a connection cancels its running jobs first (an export also on the EHR) and waits this long for them to
   * end; past it, DELETE answers 202 and purges nothing yet (a repeated DELETE continues).
   */
  CONNECTION_DELETE_WAIT_SECONDS: z.coerce.number().int().min(1).max(600).default(30),
});

export const ApiEnvSchema = WorkerEnvSchema.extend({
  /** Credentials accepted by the API (`x-api-key` header or `Authorization: Bearer`), comma separated. */
  API_KEYS: z
    .string({ error: 'is required: one or more API keys (comma separated, 16+ characters each)' })
    .transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean))
    .pipe(z.array(z.string().min(16, 'each API key must be at least 16 characters')).min(1, 'needs at least one key')),
}).refine((c) => c.API_HEADERS_TIMEOUT_MS <= c.API_REQUEST_TIMEOUT_MS, {
  path: ['API_HEADERS_TIMEOUT_MS'],
  message: 'must not exceed API_REQUEST_TIMEOUT_MS (the headers are part of the request)',
});

export type WorkerConfig = z.output<typeof WorkerEnvSchema>;
export type ApiConfig = z.output<typeof ApiEnvSchema>;
/** Settings every process shares. */
export type Config = WorkerConfig;

export function loadWorkerConfig(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  return parseEnv(WorkerEnvSchema, env);
}

export function loadApiConfig(env: NodeJS.ProcessEnv = process.env): ApiConfig {
  return parseEnv(ApiEnvSchema, env);
}

function parseEnv<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv): z.output<S> {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`, parsed.error.issues);
  }
  return parsed.data;
}
