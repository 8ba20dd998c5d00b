/** CLI entry: `node dist/src/sandbox/main.js` or `npx tsx src/sandbox/main.ts`. Configured by SANDBOX_* env vars. */
import pino from 'pino';
import { parseRateLimitEnv } from './limits/rate-limiter';
import type { PracticeSpec } from './practices';
import type { ExportSettings, FaultSettings, SandboxOptions } from './types';
import { startSandbox } from './index';
import { redirectUrisFromEnv } from './redirectUris';

function num(name: string, fallback?: number): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n)) throw new Error(`${name} must be a number (got "${raw}")`);
  return n;
}

function json<T>(name: string): T | undefined {
  const raw = process.env[name];
  if (!raw) return undefined;
  return JSON.parse(raw) as T;
}

export function optionsFromEnv(): Partial<SandboxOptions> {
  const env = process.env;
  const exportSettings: Partial<ExportSettings> = { ...json<Partial<ExportSettings>>('SANDBOX_EXPORT') };
  const duration = num('SANDBOX_EXPORT_DURATION_MS');
  if (duration !== undefined) exportSettings.durationMs = duration;
  const perFile = num('SANDBOX_EXPORT_MAX_PER_FILE');
  if (perFile !== undefined) exportSettings.maxResourcesPerFile = perFile;
  const faults: Partial<FaultSettings> = { ...json<Partial<FaultSettings>>('SANDBOX_FAULTS') };
  return {
    port: num('SANDBOX_PORT', 8090),
    host: env.SANDBOX_HOST || '127.0.0.1',
    publicUrl: env.SANDBOX_PUBLIC_URL || undefined,
    seed: num('SANDBOX_SEED', 42),
    patients: num('SANDBOX_PATIENTS', 5),
    resourcesPerPatient: num('SANDBOX_RESOURCES_PER_PATIENT', 3),
    clientId: env.SANDBOX_CLIENT_ID || 'ehr-sync-local',
    clientSecret: env.SANDBOX_CLIENT_SECRET || 'ehr-sync-local-secret',
    redirectUris: redirectUrisFromEnv(env),
    accessTokenTtlSeconds: num('SANDBOX_ACCESS_TOKEN_TTL', 3600),
    backendTokenTtlSeconds: num('SANDBOX_BACKEND_TOKEN_TTL', 300),
    rateLimit: parseRateLimitEnv(env.SANDBOX_RATE_LIMIT, num('SANDBOX_DAILY_LIMIT')),
    practices: json<PracticeSpec[]>('SANDBOX_PRACTICES') ?? [],
    clients: json('SANDBOX_CLIENTS') ?? [],
    // Strict by default; only the literal "false" relaxes it (a typo must not silently turn the check off).
    requireAssertionTyp: env.SANDBOX_REQUIRE_ASSERTION_TYP !== 'false',
    faults,
    export: exportSettings,
  };
}

async function main(): Promise<void> {
  const log = pino({ name: 'fhir-sandbox' });
  const options = optionsFromEnv();
  const started = Date.now();
  const sandbox = await startSandbox(options);
  log.info(
    {
      url: sandbox.url,
      fhirBaseUrl: sandbox.fhirBaseUrl,
      storageOrigin: sandbox.admin.storageOrigin(),
      patients: options.patients,
      resourcesPerPatient: options.resourcesPerPatient,
      rateLimit: options.rateLimit,
      startupMs: Date.now() - started,
    },
    `FHIR sandbox listening on ${sandbox.url}`,
  );
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'FHIR sandbox stopping');
    sandbox.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`${JSON.stringify({ level: 60, msg: 'FHIR sandbox failed to start', err: String(err) })}\n`);
    process.exit(1);
  });
}
