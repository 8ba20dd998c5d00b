/**
 * Shared by bench/rate-limit.ts and the limiter tests: builds the service graph (one MongoClient and one shared
 * limiter per call, as one process would have) against a sandbox, with a backend connection holding a minted token.
 */
import { randomBytes } from 'node:crypto';
import { loadApiConfig } from '../src/config';
import { createServices, type Services } from '../src/services';
import { newConnectionId, type ConnectionDoc } from '../src/store/connections';
import type { RequestLimiter } from '../src/fhir/limiter';
import { fhirConnectionOf } from '../src/activities/fhirConnection';

export interface LimiterEnvOptions {
  mongoUri: string;
  dbName: string;
  /** The provider's default FHIR base URL. */
  fhirBaseUrl: string;
  encryptionKey?: string;
  /** EHR_PROVIDERS_JSON: override eclinicalworks' quotas etc. */
  providersJson?: string;
  /** FHIR base URLs the provider accepts besides the default. */
  allowedBaseUrls?: string[];
}

export function limiterEnv(o: LimiterEnvOptions): Record<string, string> {
  const env: Record<string, string> = {
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    API_KEYS: `bench-key-${randomBytes(12).toString('hex')}`,
    ENCRYPTION_KEY: o.encryptionKey ?? randomBytes(32).toString('base64'),
    MONGODB_URI: o.mongoUri,
    MONGODB_DB: o.dbName,
    ECLINICALWORKS_CLIENT_ID: 'ehr-sync-local',
    ECLINICALWORKS_CLIENT_SECRET: 'ehr-sync-local-secret',
    ECLINICALWORKS_REDIRECT_URI: 'http://127.0.0.1:3000/api/ehr/callback',
    ECLINICALWORKS_FHIR_ENDPOINT: o.fhirBaseUrl,
  };
  if (o.providersJson) env.EHR_PROVIDERS_JSON = o.providersJson;
  return env;
}

export function openServices(env: Record<string, string>, limiter?: RequestLimiter): Promise<Services> {
  return createServices(loadApiConfig(env), limiter ? { limiter } : {});
}

/** A backend connection whose (non-expiring) token was minted by the sandbox: no OAuth traffic during the run. */
export async function createBackendConnection(services: Services, fhirBaseUrl: string, accessToken: string, id = newConnectionId()): Promise<ConnectionDoc> {
  const doc = await services.connections.create({
    _id: id,
    provider: 'eclinicalworks',
    kind: 'backend',
    fhirBaseUrl,
    clientId: 'ehr-sync-local',
    scopes: ['system/*.read'],
  });
  await services.connections.saveTokens(doc._id, { accessToken });
  return (await services.connections.get(doc._id)) as ConnectionDoc;
}

export const SYNC_TYPES = ['Observation', 'Condition', 'Encounter', 'MedicationRequest', 'Procedure', 'DiagnosticReport'] as const;

/**
 * A sync-like load: `lanes` concurrent loops, each paging through resource types (restarting when a type is done),
 * until `until()` says stop. Returns the number of pages fetched.
 */
export async function syncLoad(services: Services, connection: ConnectionDoc, opts: { lanes: number; pageSize?: number; until: () => boolean; signal?: AbortSignal; onError?: (err: unknown) => void }): Promise<{ pages: number; errors: number }> {
  let pages = 0;
  let errors = 0;
  const lane = async (i: number) => {
    let t = i;
    while (!opts.until()) {
      const type = SYNC_TYPES[t++ % SYNC_TYPES.length]!;
      let next: string | undefined = type;
      const params = { _count: opts.pageSize ?? 20 };
      while (next && !opts.until()) {
        try {
          const page = await services.fhir.searchPage(fhirConnectionOf(connection), next, params, opts.signal);
          pages++;
          next = page.next;
        } catch (err) {
          if (opts.signal?.aborted) return;
          errors++;
          opts.onError?.(err);
          if (errors > 50) throw err;
          next = undefined;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: opts.lanes }, (_, i) => lane(i)));
  return { pages, errors };
}
