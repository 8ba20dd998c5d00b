/** In-process control of a sandbox (the same operations are served over HTTP under /_sandbox). */
import { stripUndefined, DEFAULT_EXPORT, DEFAULT_FAULTS } from './options';
import type { SandboxContext, StorageRequestRecord } from './context';
import { PracticeError, type PracticeInfo, type PracticeSpec } from './practices';
import type { StatsSnapshot } from './stats';
import { isRunning } from './export/jobs';
import {
  RESOURCE_TYPES,
  isResourceType,
  type ClientRegistration,
  type ExportSettings,
  type FaultSettings,
  type FhirResource,
  type RateLimitConfig,
  type ResourceType,
} from './types';

export interface PatientSummary {
  id: string;
  name: string;
  birthDate: string;
  gender: string;
}

export interface ExportJobSummary {
  id: string;
  clientId: string;
  level: string;
  groupId?: string;
  request: string;
  types: string[];
  transactionTime: string;
  state: 'in-progress' | 'complete' | 'failed' | 'deleted' | 'expired';
  polls: number;
  files: { name: string; kind: string; type: string; count: number }[];
}

export interface FaultsView extends FaultSettings {
  export: ExportSettings;
}

export type FaultsUpdate = Partial<FaultSettings> & { export?: Partial<ExportSettings> };

export interface IssueTokenRequest {
  clientId?: string;
  scopes: string[] | string;
  patient?: string;
  ttlSeconds?: number;
}

export interface SandboxAdmin {
  registerClient(client: ClientRegistration): ClientRegistration;
  listClients(): ClientRegistration[];
  listPatients(): PatientSummary[];
  /** Stored resources of a type exactly as served, in (lastUpdated, id) order; optionally one patient's. */
  getResources(type: ResourceType, options?: { patient?: string; limit?: number }): FhirResource[];
  getResource(type: ResourceType, id: string): FhirResource | null;
  /** Shallow-merges `changes` into the resource; bumps versionId and lastUpdated. Returns the new version. */
  updateResource(type: ResourceType, id: string, changes?: Record<string, unknown>): FhirResource;
  addResource(type: ResourceType, resource: Omit<FhirResource, 'resourceType'> & { resourceType?: string }): FhirResource;
  /** Deletes a resource: reads answer 410, searches skip it, exports with _since list it as deleted. */
  deleteResource(type: ResourceType, id: string): boolean;
  /** Makes every access token expired now (refresh tokens stay valid). Returns how many were live. */
  expireAccessTokens(): number;
  /** Mints an access token directly (no OAuth dance), e.g. for client-side tests. */
  issueToken(request: IssueTokenRequest): { accessToken: string; expiresIn: number; scope: string; patient?: string };
  getFaults(): FaultsView;
  setFaults(update: FaultsUpdate): FaultsView;
  resetFaults(): FaultsView;
  getRateLimit(): RateLimitConfig | null;
  setRateLimit(config: RateLimitConfig | null): RateLimitConfig | null;
  getStats(): StatsSnapshot;
  resetStats(): void;
  /** Requests the storage host received (and whether they carried an Authorization header). */
  storageRequests(): StorageRequestRecord[];
  clearStorageRequests(): void;
  storageOrigin(): string | null;
  listExportJobs(): ExportJobSummary[];
  /** Makes the files of one job (or all jobs) expire now: downloads answer 410. Returns how many jobs. */
  expireExportFiles(jobId?: string): number;
  counts(): Record<ResourceType, number>;
  /** The server's type knobs (see SandboxOptions): which types it lacks, which it cannot search by patient. */
  setTypeKnobs(knobs: { unsupportedTypes?: ResourceType[]; noPatientSearchTypes?: ResourceType[] }): { unsupportedTypes: ResourceType[]; noPatientSearchTypes: ResourceType[] };
  /** Adds a practice at `/fhir/r4/{code}` with its own patients and quota (on the server's admin only). */
  createPractice(spec: PracticeSpec): PracticeInfo;
  listPractices(): PracticeInfo[];
  /** One practice's admin: its patients, resources, quota (`setRateLimit`), stats, faults, tokens. */
  practice(code: string): SandboxAdmin;
}

export function createAdmin(ctx: SandboxContext): SandboxAdmin {
  const requireType = (type: string): ResourceType => {
    if (!isResourceType(type)) throw new Error(`Unsupported resource type ${type}`);
    return type;
  };
  const faultsView = (): FaultsView => structuredClone({ ...ctx.faults, export: ctx.exportSettings });

  const practices = () => {
    if (!ctx.practices) throw new PracticeError(400, 'practices are managed on the server, not on a practice');
    return ctx.practices;
  };

  const admin: SandboxAdmin = {
    createPractice: (spec) => practices().create(spec),
    listPractices: () => practices().list(),
    practice: (code) => practices().admin(code),
    registerClient: (client) => ctx.clients.register(client),
    listClients: () => ctx.clients.list(),
    listPatients: () => ctx.store.livePatients().map((p) => ctx.store.patientSummary(p)),
    getResources(type, options = {}) {
      const t = requireType(type);
      let patients: Set<number> | null = null;
      if (options.patient !== undefined) {
        const p = ctx.store.patientIndex(options.patient.replace(/^Patient\//, ''));
        patients = new Set(p >= 0 ? [p] : []);
      }
      const out: FhirResource[] = [];
      const limit = options.limit ?? Infinity;
      for (const ref of ctx.store.iterate(t, { patients })) {
        if (out.length >= limit) break;
        out.push(ctx.store.resourceOf(t, ref));
      }
      return out;
    },
    getResource(type, id) {
      const r = ctx.store.get(requireType(type), id);
      return r === 'deleted' ? null : r;
    },
    updateResource(type, id, changes = {}) {
      const r = ctx.store.update(requireType(type), id, changes);
      if (!r) throw new Error(`${type}/${id} not found`);
      return r;
    },
    addResource(type, resource) {
      return ctx.store.add(requireType(type), { ...resource, resourceType: type });
    },
    deleteResource: (type, id) => ctx.store.delete(requireType(type), id),
    expireAccessTokens: () => ctx.tokens.expireAllAccessTokens(),
    issueToken(request) {
      const scopes = Array.isArray(request.scopes) ? request.scopes : request.scopes.split(/\s+/).filter(Boolean);
      const backend = scopes.some((s) => s.startsWith('system/'));
      const ttl = request.ttlSeconds ?? (backend ? ctx.faults.backendTokenTtlSeconds : ctx.faults.accessTokenTtlSeconds);
      if (request.patient !== undefined && ctx.store.patientIndex(request.patient) < 0) {
        throw new Error(`Unknown patient ${request.patient}`);
      }
      const { token } = ctx.tokens.issueAccess({
        clientId: request.clientId ?? ctx.options.clientId,
        scopes,
        patient: request.patient,
        backend,
        ttlSeconds: ttl,
      });
      return { accessToken: token, expiresIn: ttl, scope: scopes.join(' '), ...(request.patient ? { patient: request.patient } : {}) };
    },
    getFaults: faultsView,
    setFaults(update) {
      const { export: exportUpdate, ...faults } = update;
      Object.assign(ctx.faults, stripUndefined(faults));
      if (exportUpdate) Object.assign(ctx.exportSettings, stripUndefined(exportUpdate));
      return faultsView();
    },
    resetFaults() {
      Object.assign(ctx.faults, {
        ...DEFAULT_FAULTS,
        accessTokenTtlSeconds: ctx.options.accessTokenTtlSeconds,
        backendTokenTtlSeconds: ctx.options.backendTokenTtlSeconds,
        ...stripUndefined(ctx.options.faults),
      });
      Object.assign(ctx.exportSettings, { ...DEFAULT_EXPORT, ...stripUndefined(ctx.options.export) });
      return faultsView();
    },
    setTypeKnobs(knobs) {
      for (const t of [...(knobs.unsupportedTypes ?? []), ...(knobs.noPatientSearchTypes ?? [])]) {
        if (!isResourceType(t) || t === 'Patient') throw new Error(`Unsupported resource type ${t}`);
      }
      if (knobs.unsupportedTypes) ctx.options.unsupportedTypes = [...knobs.unsupportedTypes];
      if (knobs.noPatientSearchTypes) ctx.options.noPatientSearchTypes = [...knobs.noPatientSearchTypes];
      return { unsupportedTypes: [...ctx.options.unsupportedTypes], noPatientSearchTypes: [...ctx.options.noPatientSearchTypes] };
    },
    getRateLimit: () => ctx.limiter.current(),
    setRateLimit(config) {
      ctx.limiter.configure(config);
      return ctx.limiter.current();
    },
    getStats: () => ctx.stats.snapshot(),
    resetStats: () => ctx.stats.reset(),
    storageRequests: () => ctx.storage.requests.map((r) => ({ ...r })),
    clearStorageRequests() {
      ctx.storage.requests.length = 0;
    },
    storageOrigin: () => ctx.storage.origin,
    listExportJobs() {
      const now = Date.now();
      return ctx.jobs.list().map((j) => {
        const running = isRunning(j, now, ctx.exportSettings.neverFinish);
        const state: ExportJobSummary['state'] = j.deleted
          ? 'deleted'
          : running
            ? 'in-progress'
            : j.settings.failJobs
              ? 'failed'
              : j.expiresAt !== null && now >= j.expiresAt
                ? 'expired'
                : 'complete';
        return {
          id: j.id,
          clientId: j.clientId,
          level: j.level,
          groupId: j.groupId,
          request: j.request,
          types: j.types,
          transactionTime: new Date(j.transactionTime).toISOString(),
          state,
          polls: j.polls,
          files: j.files.map((f) => ({ name: f.name, kind: f.kind, type: f.type, count: f.count })),
        };
      });
    },
    expireExportFiles(jobId) {
      const now = Date.now();
      let n = 0;
      for (const j of ctx.jobs.list()) {
        if (jobId !== undefined && j.id !== jobId) continue;
        j.expiresAt = now;
        j.readyAt = Math.min(j.readyAt, now);
        n++;
      }
      return n;
    },
    counts() {
      const out = {} as Record<ResourceType, number>;
      for (const t of RESOURCE_TYPES) {
        out[t] = ctx.store.countLive(t);
      }
      return out;
    },
  };
  return admin;
}
