/** The state one sandbox instance shares between its routes. */
import type { Request } from 'express';
import { ClientRegistry } from './auth/clients';
import { TokenService } from './auth/tokens';
import { SandboxDataset } from './data/dataset';
import { ExportJobs } from './export/jobs';
import { RateLimiter } from './limits/rate-limiter';
import { DEFAULT_EXPORT, DEFAULT_FAULTS, stripUndefined } from './options';
import type { SandboxAdmin } from './admin';
import type { PracticeRegistry } from './practices';
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

/**
 * Where one practice's server lives under the sandbox's origin. The default practice answers at the root
 * (`/fhir/r4`, `/oauth/...`); practice `c` answers everything under its own base URL `/fhir/r4/c` (its FHIR API,
 * `/fhir/r4/c/oauth/...`, `/fhir/r4/c/bulkfiles/...`), as eClinicalWorks gives each practice its own base URL.
 */
export interface PracticeMount {
  /** null for the default practice. */
  code: string | null;
  /** Path prefix of the practice's non-FHIR URLs (OAuth, files, documents): '' or `/fhir/r4/{code}`. */
  root: string;
  /** Path of its FHIR base: `/fhir/r4` or `/fhir/r4/{code}`. */
  fhir: string;
}

export const DEFAULT_MOUNT: PracticeMount = { code: null, root: '', fhir: '/fhir/r4' };

export interface SandboxContext {
  options: SandboxOptions;
  mount: PracticeMount;
  /** The default practice's context for a practice's (its public URL is the server's); null on the default. */
  parent: SandboxContext | null;
  /** The server's practices (on the default practice's context only). */
  practices: PracticeRegistry<SandboxAdmin> | null;
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

/** What a practice shares with the server it lives on: the app registrations (clients are the vendor's, not a practice's). */
export interface PracticeOf {
  parent: SandboxContext;
  mount: PracticeMount;
}

export function createContext(options: SandboxOptions, practiceOf: PracticeOf | null = null): SandboxContext {
  const ctxRef: { ctx?: SandboxContext } = {};
  const store = new SandboxDataset({
    seed: options.seed,
    patients: options.patients,
    resourcesPerPatient: options.resourcesPerPatient,
    dataEpoch: options.dataEpoch,
    largePatients: options.largePatients,
    largePatientFactor: options.largePatientFactor,
    now: () => Date.now() + (ctxRef.ctx?.faults.clockSkewMs ?? 0),
    documentUrl: (id) => {
      const c = ctxRef.ctx;
      const at = (c ? publicUrlOf(c) : null) ?? `http://${options.host}:${options.port}`;
      return `${at}${c?.mount.root ?? ''}/documents/${id}.pdf`;
    },
  });
  let clients: ClientRegistry;
  if (practiceOf) {
    clients = practiceOf.parent.clients;
  } else {
    clients = new ClientRegistry();
    clients.register({ clientId: options.clientId, clientSecret: options.clientSecret, redirectUris: options.redirectUris });
    for (const c of options.clients) clients.register(c);
  }
  const faults: FaultSettings = {
    ...DEFAULT_FAULTS,
    accessTokenTtlSeconds: options.accessTokenTtlSeconds,
    backendTokenTtlSeconds: options.backendTokenTtlSeconds,
    ...stripUndefined(options.faults),
  };
  const ctx: SandboxContext = {
    options,
    mount: practiceOf?.mount ?? DEFAULT_MOUNT,
    parent: practiceOf?.parent ?? null,
    practices: null,
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

function publicUrlOf(ctx: SandboxContext): string | null {
  return ctx.parent ? ctx.parent.publicUrl : ctx.publicUrl;
}

/** The server's origin (scheme, host, port), the same for every practice. */
export function origin(ctx: SandboxContext, req: Request): string {
  return publicUrlOf(ctx) ?? `${req.protocol}://${req.get('host') ?? `${ctx.options.host}:${ctx.options.port}`}`;
}

/** Where this practice's OAuth endpoints, export files and documents are: the origin, or the practice's base URL. */
export function serverRoot(ctx: SandboxContext, req: Request): string {
  return `${origin(ctx, req)}${ctx.mount.root}`;
}

export function fhirBase(ctx: SandboxContext, req: Request): string {
  return `${origin(ctx, req)}${ctx.mount.fhir}`;
}

export function tokenUrl(ctx: SandboxContext, req: Request): string {
  return `${serverRoot(ctx, req)}/oauth/token`;
}
