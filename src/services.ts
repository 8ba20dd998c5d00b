import type { MongoClient, Db } from 'mongodb';
import type { Config } from './config';
import { SecretBox } from './crypto/secretBox';
import { createHttpClient, type Got } from './fhir/http';
import { FhirClient } from './fhir/client';
import type { RequestLimiter } from './fhir/limiter';
import type { FhirObserver } from './fhir/observer';
import { MongoRateLimiter, isRateBudgetReader, type RateBudgetReader, type RateLimitBlockAdmin } from './limits';
import { SmartDiscovery } from './auth/discovery';
import { SmartAuth } from './auth/smartAuth';
import { OpenConnections } from './auth/openConnections';
import { TokenService } from './auth/tokens';
import { ProviderRegistry } from './providers/registry';
import { connectMongo, ensureIndexes } from './store/mongo';
import { verifyIndexedHotPaths } from './store/indexCheck';
import { backfillDateNorms } from './store/fhirSearch/backfill';
import { backfillConnectionHealth } from './store/connectionHealth';
import { backfillChangeStamps } from './store/changeFeed/backfill';
import { ConnectionStore } from './store/connections';
import { OAuthStateStore } from './store/oauthStates';
import { ResourceStore } from './store/resources';
import { JobStore, SyncPointStore } from './store/jobs';
import { LeaseStore } from './store/leases';

/**
 * The real dependencies, built once per process from the parsed configuration. The worker and the API both
 * start from here; tests build the same graph against the real local services.
 */
export interface Services {
  config: Config;
  mongo: MongoClient;
  db: Db;
  registry: ProviderRegistry;
  http: Got;
  discovery: SmartDiscovery;
  connections: ConnectionStore;
  oauthStates: OAuthStateStore;
  resources: ResourceStore;
  jobs: JobStore;
  syncPoints: SyncPointStore;
  leases: LeaseStore;
  smartAuth: SmartAuth;
  openConnections: OpenConnections;
  tokens: TokenService;
  limiter: RequestLimiter;
  /** Used/remaining per quota key (the shared limiter's state in MongoDB), for /metrics and the API. */
  rateBudget: RateBudgetReader;
  /** The shared limiter's blocks: shown and lifted by operators (GET/DELETE …/rate-limit[/blocks]). */
  rateLimitBlocks: RateLimitBlockAdmin;
  fhir: FhirClient;
  close(): Promise<void>;
}

export async function createServices(
  config: Config,
  overrides: { limiter?: RequestLimiter; fhirObserver?: FhirObserver; /** tests only: see HttpClientOptions */ httpRetryDelayScale?: number } = {},
): Promise<Services> {
  const registry = ProviderRegistry.fromConfig(config);
  const { client: mongo, db } = await connectMongo(config.MONGODB_URI, config.MONGODB_DB);
  await ensureIndexes(db);
  // The start-up checks and one-off migrations; on any failure the connection is closed before the error goes up.
  try {
    // Refuse to run on a database that would scan whole collections (see src/store/indexCheck.ts).
    await verifyIndexedHotPaths(db);
    // Resources stored before date searches used normalised ranges get them now, once (a marker skips it afterwards).
    await backfillDateNorms(db);
    // Stores from before the fleet view get each connection's last job outcomes from its jobs, once.
    await backfillConnectionHealth(db);
    // Resources stored before the change feed get their stamp now, once, so that reading the feed from the beginning
    // answers every stored resource (src/store/changeFeed/backfill.ts).
    await backfillChangeStamps(db);
  } catch (err) {
    await mongo.close().catch(() => undefined);
    throw err;
  }
  const box = new SecretBox(config.ENCRYPTION_KEY);
  const retryAfterMaxMs = config.RETRY_AFTER_MAX_SECONDS * 1000;
  const http = createHttpClient({ maxRetryAfterMs: retryAfterMaxMs, retryDelayScale: overrides.httpRetryDelayScale });
  const discovery = new SmartDiscovery(http, {
    timeoutMs: config.DISCOVERY_TIMEOUT_MS,
    cacheTtlMs: config.DISCOVERY_CACHE_TTL_SECONDS * 1000,
    failureTtlMs: config.DISCOVERY_FAILURE_CACHE_SECONDS * 1000,
  });
  const connections = new ConnectionStore(db, box);
  const oauthStates = new OAuthStateStore(db, box);
  const resources = new ResourceStore(db);
  const jobs = new JobStore(db);
  const syncPoints = new SyncPointStore(db);
  const leases = new LeaseStore(db);
  // The shared limiter (quotas from the registry, state in MongoDB); tests and tools may pass `unlimited`.
  const sharedLimiter = new MongoRateLimiter(db, registry, {
    maxBlockMs: retryAfterMaxMs,
    maxWaitMs: config.RATE_LIMIT_MAX_WAIT_SECONDS * 1000,
    fairness: config.RATE_LIMIT_FAIRNESS,
  });
  const limiter = overrides.limiter ?? sharedLimiter;
  // Token requests take places in the same limiter as FHIR requests (SmartAuthDeps.limiter).
  const smartAuth = new SmartAuth({ registry, discovery, connections, oauthStates, insecureHosts: config.ALLOW_INSECURE_HOSTS, limiter });
  const tokens = new TokenService(connections, smartAuth, leases, overrides.fhirObserver);
  const rateBudget = isRateBudgetReader(limiter) ? limiter : sharedLimiter;
  const fhir = new FhirClient(http, tokens, limiter, overrides.fhirObserver, { retryAfterMaxMs });
  return {
    config,
    mongo,
    db,
    registry,
    http,
    discovery,
    connections,
    oauthStates,
    resources,
    jobs,
    syncPoints,
    leases,
    smartAuth,
    openConnections: new OpenConnections({ registry, discovery, connections, smartAuth }),
    tokens,
    limiter,
    rateBudget,
    rateLimitBlocks: sharedLimiter,
    fhir,
    close: () => mongo.close(),
  };
}
