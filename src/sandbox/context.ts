/** The state one sandbox instance shares between its routes. */
import type { Request } from 'express';
import { ClientRegistry } from './auth/clients';
import { TokenService } from './auth/tokens';
import { SandboxDataset } from './data/dataset';
import { ExportJobs } from './export/jobs';
import { RateLimiter } from './limits/rate-limiter';
import { DEFAULT_EXPORT, DEFAULT_FAULTS, stripUndefined } from './options';
import { Stats } from './stats';
import type { ExportSettings, FaultSettings, SandboxOptions } from './types';
import { mix, mulberry32, type Rng } from './util/prng';

export interface StorageHostInfo {
  /** Origin of the storage listener (set once it listens). */
  origin: string | null;
  requests: StorageRequestRecord[];
}

export interface StorageRequestRecord {
  at: string;
  method: string;
  path: string;
  hadAuthorization: boolean;
  status: number;
}

export interface SandboxContext {
  options: SandboxOptions;
  store: SandboxDataset;
  clients: ClientRegistry;
  tokens: TokenService;
  stats: Stats;
  limiter: RateLimiter;
  faults: FaultSettings;
  exportSettings: ExportSettings;
  jobs: ExportJobs;
  storage: StorageHostInfo;
  /** Seeded RNG for faults (repeatable runs). */
  faultRng: Rng;
  publicUrl: string | null;
  /** Signing secret for storage-host URLs. */
  storageSecret: string;
}

export function createContext(options: SandboxOptions): SandboxContext {
  const ctxRef: { ctx?: SandboxContext } = {};
  const store = new SandboxDataset({
    seed: options.seed,
    patients: options.patients,
    resourcesPerPatient: options.resourcesPerPatient,
    dataEpoch: options.dataEpoch,
    now: () => Date.now() + (ctxRef.ctx?.faults.clockSkewMs ?? 0),
    documentUrl: (id) => `${ctxRef.ctx?.publicUrl ?? `http://${options.host}:${options.port}`}/documents/${id}.pdf`,
  });
  const clients = new ClientRegistry();
  clients.register({ clientId: options.clientId, clientSecret: options.clientSecret, redirectUris: options.redirectUris });
  for (const c of options.clients) clients.register(c);
  const faults: FaultSettings = {
    ...DEFAULT_FAULTS,
    accessTokenTtlSeconds: options.accessTokenTtlSeconds,
    backendTokenTtlSeconds: options.backendTokenTtlSeconds,
    ...stripUndefined(options.faults),
  };
  const ctx: SandboxContext = {
    options,
    store,
    clients,
    tokens: new TokenService(),
    stats: new Stats(),
    limiter: new RateLimiter(options.rateLimit),
    faults,
    exportSettings: { ...DEFAULT_EXPORT, ...stripUndefined(options.export) },
    jobs: new ExportJobs(),
    storage: { origin: null, requests: [] },
    faultRng: mulberry32(mix(options.seed, 0xfa017)),
    publicUrl: options.publicUrl ?? null,
    storageSecret: `storage-${mix(options.seed, Date.now() & 0xffffffff, process.pid)}`,
  };
  ctxRef.ctx = ctx;
  return ctx;
}

export function origin(ctx: SandboxContext, req: Request): string {
  return ctx.publicUrl ?? `${req.protocol}://${req.get('host') ?? `${ctx.options.host}:${ctx.options.port}`}`;
}

export function fhirBase(ctx: SandboxContext, req: Request): string {
  return `${origin(ctx, req)}/fhir/r4`;
}

export function tokenUrl(ctx: SandboxContext, req: Request): string {
  return `${origin(ctx, req)}/oauth/token`;
}
