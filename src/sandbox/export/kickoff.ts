/** Bulk Data kick-off: [base]/$export, [base]/Patient/$export, [base]/Group/{id}/$export (GET or POST Parameters). */
import type { Request, Response } from 'express';
import { authenticate, type AuthLocals } from '../auth/bearer';
import { visibility } from '../auth/scopes';
import { randomToken, type AccessTokenRecord } from '../auth/tokens';
import { fhirBase, origin, type SandboxContext } from '../context';
import type { Ref } from '../data/dataset';
import { FhirError, sendFhir, sendFhirError } from '../fhir/outcome';
import { isLenient, queryPairs, tokenPatientIndex } from '../fhir/routes';
import { matchesRef, parseSearch, patientIndexOfReference, type ParsedSearch } from '../fhir/search';
import { RESOURCE_TYPES, isResourceType, type ResourceType } from '../types';
import { parseFhirDateRange } from '../util/time';
import { resolveRequiresAccessToken, type ExportFile, type ExportJob, type JobLevel } from './jobs';

const OUTPUT_FORMATS = ['application/fhir+ndjson', 'application/ndjson', 'ndjson'];
const SUPPORTED = new Set(['_outputFormat', '_since', '_type', '_typeFilter', 'patient']);

interface KickoffParams {
  outputFormat?: string;
  since?: string;
  types: string[];
  typeFilters: string[];
  patients: string[];
  unsupported: string[];
}

function fromQuery(req: Request): KickoffParams {
  const out: KickoffParams = { types: [], typeFilters: [], patients: [], unsupported: [] };
  for (const [name, value] of queryPairs(req)) {
    switch (name) {
      case '_outputFormat':
        out.outputFormat = value;
        break;
      case '_since':
        out.since = value;
        break;
      case '_type':
        out.types.push(...value.split(',').map((s) => s.trim()).filter(Boolean));
        break;
      case '_typeFilter':
        out.typeFilters.push(...value.split(/,(?=[A-Z][A-Za-z]+\?)/));
        break;
      case 'patient': // only valid in a POST body
      default:
        out.unsupported.push(name);
    }
  }
  return out;
}

interface ParametersResource {
  resourceType?: unknown;
  parameter?: { name?: unknown; [k: string]: unknown }[];
}

function fromParameters(body: unknown): KickoffParams {
  const out: KickoffParams = { types: [], typeFilters: [], patients: [], unsupported: [] };
  const params = body as ParametersResource | undefined;
  if (!params || params.resourceType !== 'Parameters') {
    throw new FhirError(400, 'invalid', 'POST kick-off needs a FHIR Parameters resource body');
  }
  for (const p of params.parameter ?? []) {
    const name = typeof p.name === 'string' ? p.name : '';
    const valueKey = Object.keys(p).find((k) => k.startsWith('value'));
    const value = valueKey ? p[valueKey] : undefined;
    const text = typeof value === 'string' ? value : undefined;
    switch (name) {
      case '_outputFormat':
        out.outputFormat = text;
        break;
      case '_since':
        out.since = text;
        break;
      case '_type':
        if (text) out.types.push(...text.split(',').map((s) => s.trim()).filter(Boolean));
        break;
      case '_typeFilter':
        if (text) out.typeFilters.push(text);
        break;
      case 'patient': {
        const ref = value && typeof value === 'object' ? (value as { reference?: unknown }).reference : undefined;
        if (typeof ref === 'string') out.patients.push(ref);
        else throw new FhirError(400, 'invalid', 'patient parameter needs valueReference');
        break;
      }
      default:
        out.unsupported.push(name);
    }
  }
  return out;
}

function acceptsFhirJson(req: Request): boolean {
  const accept = req.get('accept') ?? '';
  return /application\/fhir\+json/i.test(accept);
}

function respondAsync(req: Request): boolean {
  return /respond-async/i.test(req.get('prefer') ?? '');
}

export function handleKickoff(ctx: SandboxContext, req: Request, res: Response, level: JobLevel, groupId?: string): void {
  if (!authenticate(ctx, req, res)) return;
  const auth = (res.locals as AuthLocals).auth as AccessTokenRecord;
  try {
    const { statusUrl, body } = startJob(ctx, req, auth, level, groupId);
    sendFhir(res, 202, body, { 'Content-Location': statusUrl });
  } catch (err) {
    if (err instanceof FhirError) return sendFhirError(res, err);
    throw err;
  }
}

export function kickoffRoute(ctx: SandboxContext, level: JobLevel) {
  return (req: Request, res: Response): void => {
    handleKickoff(ctx, req, res, level, level === 'group' ? String(req.params.id) : undefined);
  };
}

function startJob(
  ctx: SandboxContext,
  req: Request,
  auth: AccessTokenRecord,
  level: JobLevel,
  groupId?: string,
): { statusUrl: string; body: object } {
  if (!respondAsync(req)) throw new FhirError(400, 'invalid', 'Prefer: respond-async is required');
  if (!acceptsFhirJson(req)) throw new FhirError(400, 'invalid', 'Accept: application/fhir+json is required');
  const lenient = isLenient(req);
  const params = req.method === 'POST' ? fromParameters(req.body) : fromQuery(req);
  const unsupported = params.unsupported.filter((n) => !SUPPORTED.has(n) || (n === 'patient' && req.method !== 'POST'));
  if (unsupported.length > 0 && !lenient) {
    throw new FhirError(400, 'not-supported', `Unsupported kick-off parameter(s): ${unsupported.join(', ')}`);
  }
  if (params.outputFormat !== undefined && !OUTPUT_FORMATS.includes(params.outputFormat)) {
    throw new FhirError(400, 'not-supported', `_outputFormat ${params.outputFormat} is not supported`);
  }
  let since: number | null = null;
  if (params.since !== undefined) {
    const range = parseFhirDateRange(params.since);
    if (!range) throw new FhirError(400, 'invalid', `Invalid _since "${params.since}"`);
    since = range.start;
  }
  const settings = { ...ctx.exportSettings };
  const now = Date.now();
  if (settings.maxConcurrentJobs > 0 && ctx.jobs.running(now, ctx.exportSettings.neverFinish).length >= settings.maxConcurrentJobs) {
    throw new FhirError(429, 'throttled', 'Too many concurrent exports; retry later', { 'Retry-After': '30' });
  }

  // Which patients.
  const store = ctx.store;
  let patients: Set<number> | null = null;
  if (level === 'group') {
    const group = store.groups().find((g) => g.id === groupId);
    if (!group) throw new FhirError(404, 'not-found', `Group/${groupId ?? ''} is not known`);
    patients = new Set(group.members);
  } else if (level === 'patient') {
    patients = new Set(store.livePatients());
  }
  if (params.patients.length > 0) {
    const wanted = new Set<number>();
    for (const ref of params.patients) {
      const p = patientIndexOfReference(store, ref);
      if (p < 0 || (patients !== null && !patients.has(p))) throw new FhirError(400, 'invalid', `Unknown patient ${ref}`);
      wanted.add(p);
    }
    patients = wanted;
  }

  // Which types (and whether the token may see them).
  for (const t of params.types) {
    // Worded as a real server words it (the service must find the type in the text).
    if ((!isResourceType(t) || ctx.options.unsupportedTypes.includes(t)) && !lenient) {
      throw new FhirError(400, 'not-supported', `The requested resource type "${t}" is not available on this server`);
    }
    if (level !== 'system' && isResourceType(t) && ctx.options.noPatientSearchTypes.includes(t) && !lenient) {
      throw new FhirError(400, 'not-supported', `Resource type ${t} has no search parameter that refers to patients: it cannot be part of a ${level === 'group' ? 'Group' : 'Patient'}-level export`);
    }
  }
  // Without _type: every type this server has (and, below System level, can tie to a patient).
  const served = RESOURCE_TYPES.filter(
    (t) => !ctx.options.unsupportedTypes.includes(t) && (level === 'system' || !ctx.options.noPatientSearchTypes.includes(t)),
  );
  const requested: ResourceType[] =
    params.types.length > 0 ? params.types.filter((t): t is ResourceType => isResourceType(t) && served.includes(t)) : served;
  const types: ResourceType[] = [];
  for (const t of [...new Set(requested)]) {
    const vis = visibility(auth.grants, t, 'read');
    if (vis === 'all') {
      types.push(t);
      continue;
    }
    if (vis === 'patient' && level !== 'system') {
      const own = tokenPatientIndex(ctx, auth);
      if (patients !== null && !patients.has(own)) throw new FhirError(403, 'forbidden', 'The token patient is not in this export');
      patients = new Set([own]);
      types.push(t);
      continue;
    }
    if (params.types.length > 0) throw new FhirError(403, 'forbidden', `The token's scopes do not allow exporting ${t}`);
  }
  if (types.length === 0) throw new FhirError(403, 'forbidden', "The token's scopes do not allow this export");

  // _typeFilter: per type, OR of the filters.
  const filters = new Map<ResourceType, ParsedSearch[]>();
  for (const raw of params.typeFilters) {
    const q = raw.indexOf('?');
    const t = q > 0 ? raw.slice(0, q) : '';
    if (!isResourceType(t)) {
      if (lenient) continue;
      throw new FhirError(400, 'invalid', `Invalid _typeFilter "${raw}"`);
    }
    let parsed: ParsedSearch;
    try {
      parsed = parseSearch(store, {
        type: t,
        params: [...new URLSearchParams(raw.slice(q + 1)).entries()],
        strict: !lenient,
        defaultPageSize: 1,
        maxPageSize: 1,
        restrictToPatient: null,
        filterOnly: !lenient,
      });
    } catch (err) {
      if (err instanceof FhirError) throw new FhirError(400, err.code, `_typeFilter ${raw}: ${err.message}`);
      throw err;
    }
    filters.set(t, [...(filters.get(t) ?? []), parsed]);
  }

  const transactionTime = store.stamp();
  const id = randomToken(12);
  const files = planFiles(ctx, types, patients, since, transactionTime, filters, settings);
  const job: ExportJob = {
    id,
    clientId: auth.clientId,
    level,
    groupId,
    request: `${origin(ctx, req)}${req.originalUrl}`,
    types,
    since,
    transactionTime,
    createdAt: now,
    readyAt: now + settings.durationMs,
    deleted: false,
    files,
    settings,
    requiresAccessToken: resolveRequiresAccessToken(settings, ctx.storage.origin),
    lastPollAt: null,
    polls: 0,
    expiresAt: null,
  };
  ctx.jobs.add(job);
  const own = `${fhirBase(ctx, req)}/bulkstatus/${id}`;
  // statusUrlOrigin: the same status URL on another origin (a client must not poll it there).
  const statusUrl = settings.statusUrlOrigin ? `${new URL(settings.statusUrlOrigin).origin}${new URL(own).pathname}` : own;
  return {
    statusUrl,
    body: {
      resourceType: 'OperationOutcome',
      issue: [{ severity: 'information', code: 'informational', diagnostics: `Export job ${id} accepted; poll ${statusUrl}` }],
    },
  };
}

function planFiles(
  ctx: SandboxContext,
  types: ResourceType[],
  patients: Set<number> | null,
  since: number | null,
  transactionTime: number,
  filters: Map<ResourceType, ParsedSearch[]>,
  settings: SandboxContext['exportSettings'],
): ExportFile[] {
  const store = ctx.store;
  const files: ExportFile[] = [];
  const errorLines = new Map<string, string[]>();
  // Without errorTypes, errorResources fail in the first type that has any (as before); with it, in each listed type.
  const failing = new Set(settings.errorTypes);
  let errorsLeft = settings.errorResources;
  const perFile = Math.max(1, settings.maxResourcesPerFile);
  for (const type of types) {
    const typeFilters = filters.get(type);
    const refs: Ref[] = [];
    const after = since !== null ? { lu: since, id: '\uffff' } : null;
    for (const ref of store.iterate(type, { patients, after, maxLu: transactionTime })) {
      if (typeFilters && !typeFilters.some((q) => matchesRef(store, q, ref))) continue;
      refs.push(ref);
    }
    const failHere = failing.size > 0 ? failing.has(type) : errorsLeft > 0;
    if (failHere && refs.length > 0) {
      const failed = refs.splice(0, Math.min(failing.size > 0 ? settings.errorResources : errorsLeft, refs.length));
      errorsLeft -= failed.length;
      const lines = errorLines.get(type) ?? [];
      errorLines.set(type, lines);
      for (const ref of failed) {
        lines.push(
          JSON.stringify({
            resourceType: 'OperationOutcome',
            issue: [{ severity: 'error', code: 'processing', diagnostics: `Unable to export ${type}/${store.idOf(type, ref)}: simulated failure` }],
          }),
        );
      }
    }
    if (refs.length === 0) continue;
    const typeFiles: ExportFile[] = [];
    for (let i = 0; i < refs.length; i += perFile) {
      const part = refs.slice(i, i + perFile);
      typeFiles.push({ name: `${type}-${typeFiles.length + 1}`, kind: 'output', type, resourceType: type, refs: part, lines: [], malformed: 0, count: part.length });
    }
    const first = typeFiles[0] as ExportFile;
    first.malformed = settings.malformedLines;
    const dups = refs.slice(0, Math.min(settings.duplicateResources, refs.length));
    if (dups.length > 0) {
      const last = typeFiles[typeFiles.length - 1] as ExportFile;
      if (typeFiles.length > 1) {
        last.refs = [...last.refs, ...dups];
        last.count = last.refs.length;
      } else {
        typeFiles.push({ name: `${type}-${typeFiles.length + 1}`, kind: 'output', type, resourceType: type, refs: dups, lines: [], malformed: 0, count: dups.length });
      }
    }
    files.push(...typeFiles);
  }
  // Without errorTypes: one error file, as before; with it, one per failing type (servers do both).
  const errorFiles = failing.size > 0 ? [...errorLines].map(([type, lines]) => ({ name: `errors-${type}`, lines })) : [{ name: 'errors-1', lines: [...errorLines.values()].flat() }];
  for (const { name, lines } of errorFiles) {
    if (lines.length > 0) files.push({ name, kind: 'error', type: 'OperationOutcome', refs: [], lines, malformed: 0, count: lines.length });
  }
  if (since !== null) {
    const lines: string[] = [];
    for (const type of types) {
      for (const t of store.deletedSince(type, since, transactionTime)) {
        if (patients !== null && !patients.has(t.patient)) continue;
        lines.push(
          JSON.stringify({
            resourceType: 'Bundle',
            type: 'transaction',
            entry: [{ request: { method: 'DELETE', url: `${type}/${t.id}` } }],
          }),
        );
      }
    }
    if (lines.length > 0) files.push({ name: 'deleted-1', kind: 'deleted', type: 'Bundle', refs: [], lines, malformed: 0, count: lines.length });
  }
  return files;
}
