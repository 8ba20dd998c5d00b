/** FHIR REST: read and search for the supported types, plus Group read/search. */
import express, { type Request, type Response, type Router } from 'express';
import { authenticate, type AuthLocals } from '../auth/bearer';
import { visibility } from '../auth/scopes';
import type { AccessTokenRecord } from '../auth/tokens';
import { fhirBase, serverRoot, type SandboxContext } from '../context';
import { isResourceType, type FhirResource, type ResourceType } from '../types';
import { capabilityStatement, smartConfiguration } from './capability';
import { FhirError, sendFhir, sendFhirError, sendOutcome } from './outcome';
import { encodeCursor, executeSearch, parseSearch } from './search';
import { SearchCache } from './search-cache';

export const SANDBOX_VERSION = '1.0.0';

export function isStrict(req: Request): boolean {
  return /(^|[;,\s])handling\s*=\s*strict\b/i.test(req.get('prefer') ?? '');
}

export function isLenient(req: Request): boolean {
  return /(^|[;,\s])handling\s*=\s*lenient\b/i.test(req.get('prefer') ?? '');
}

/** The query string as ordered [name, value] pairs (repeated names kept). */
export function queryPairs(req: Request): [string, string][] {
  return [...new URL(req.originalUrl, 'http://x').searchParams.entries()];
}

function formPairs(req: Request): [string, string][] {
  const body: unknown = req.body;
  const out: [string, string][] = [];
  if (body && typeof body === 'object') {
    for (const [k, v] of Object.entries(body as Record<string, unknown>)) {
      if (Array.isArray(v)) for (const item of v) out.push([k, String(item)]);
      else if (v !== undefined) out.push([k, String(v)]);
    }
  }
  return out;
}

/** Patient index a patient-context token is limited to. */
export function tokenPatientIndex(ctx: SandboxContext, auth: AccessTokenRecord): number {
  if (!auth.patient) throw new FhirError(403, 'forbidden', 'Patient-scoped token without a patient context');
  const p = ctx.store.patientIndex(auth.patient);
  if (p < 0) throw new FhirError(403, 'forbidden', 'The token patient no longer exists');
  return p;
}

function etag(resource: FhirResource): Record<string, string> {
  const headers: Record<string, string> = {};
  if (resource.meta?.versionId) headers.ETag = `W/"${resource.meta.versionId}"`;
  if (resource.meta?.lastUpdated) headers['Last-Modified'] = new Date(resource.meta.lastUpdated).toUTCString();
  return headers;
}

export function fhirRouter(ctx: SandboxContext): Router {
  const router = express.Router();

  router.get('/fhir/r4/metadata', (req, res) => {
    sendFhir(res, 200, capabilityStatement({ root: serverRoot(ctx, req), base: fhirBase(ctx, req) }, { version: SANDBOX_VERSION }, ctx.options));
  });
  const smart = (req: Request, res: Response): void => {
    res.setHeader('Cache-Control', 'no-cache');
    if (ctx.options.openMode) {
      res.status(404).json({ error: 'not_found', error_description: 'This server does not use SMART authorization' });
      return;
    }
    res.status(200).json(smartConfiguration(serverRoot(ctx, req)));
  };
  router.get('/fhir/r4/.well-known/smart-configuration', smart);
  router.get('/.well-known/smart-configuration', smart);

  const handle =
    (fn: (req: Request, res: Response, auth: AccessTokenRecord) => void) =>
    (req: Request, res: Response): void => {
      if (!authenticate(ctx, req, res)) return;
      try {
        fn(req, res, (res.locals as AuthLocals).auth as AccessTokenRecord);
      } catch (err) {
        if (err instanceof FhirError) sendFhirError(res, err);
        else throw err;
      }
    };

  const cache = new SearchCache();
  const search = (req: Request, res: Response, auth: AccessTokenRecord, typeName: string, pairs: [string, string][]): void => {
    if (!isResourceType(typeName) || ctx.options.unsupportedTypes.includes(typeName)) {
      throw new FhirError(404, 'not-supported', `Resource type ${typeName} is not supported`);
    }
    const type: ResourceType = typeName;
    if (ctx.options.noPatientSearchTypes.includes(type)) {
      const byPatient = pairs.find(([name]) => /^(patient|subject)(:.*)?$/.test(name));
      if (byPatient) throw new FhirError(400, 'not-supported', `${type} cannot be searched by ${byPatient[0]} on this server`);
    }
    const vis = visibility(auth.grants, type, 'search');
    if (vis === 'none') throw new FhirError(403, 'forbidden', `The token's scopes do not allow searching ${type}`);
    const q = parseSearch(ctx.store, {
      type,
      params: pairs,
      strict: isStrict(req),
      defaultPageSize: ctx.options.defaultPageSize,
      maxPageSize: ctx.options.maxPageSize,
      restrictToPatient: vis === 'patient' ? tokenPatientIndex(ctx, auth) : null,
    });
    // searchCacheSeconds: the same query in the same compartment within N seconds gets the cached Bundle.
    const cacheKey = JSON.stringify([type, vis, vis === 'patient' ? tokenPatientIndex(ctx, auth) : null, [...pairs].sort()]);
    const cached = cache.get(cacheKey, ctx.faults.searchCacheSeconds, req);
    if (cached) {
      res.setHeader('X-Cache', 'HIT');
      sendFhir(res, 200, cached);
      return;
    }
    // The server's clock (clockSkewMs), read before the result is assembled: nothing stamped later is in it.
    const assembledAt = new Date(Date.now() + ctx.faults.clockSkewMs).toISOString();
    const result = executeSearch(ctx.store, q);
    const base = fhirBase(ctx, req);
    const link = (cursor: string | null): string => {
      const sp = new URLSearchParams(q.applied);
      sp.set('_count', String(q.count));
      if (cursor) sp.set('_cursor', cursor);
      return `${base}/${type}?${sp.toString()}`;
    };
    const links = [{ relation: 'self', url: link(q.cursor ? encodeCursor(q.cursor) : null) }];
    // nextLinkOrigin: the same link on another origin (a client must not follow it there).
    const foreign = ctx.faults.nextLinkOrigin;
    const onOrigin = (url: string) => (foreign ? `${new URL(foreign).origin}${new URL(url).pathname}${new URL(url).search}` : url);
    if (result.next) links.push({ relation: 'next', url: onOrigin(link(encodeCursor(result.next))) });
    const bundle = {
      resourceType: 'Bundle',
      id: randomId(),
      meta: { lastUpdated: assembledAt },
      type: 'searchset',
      total: result.total,
      link: links,
      entry: result.refs.map((ref) => {
        const resource = ctx.store.resourceOf(type, ref);
        return { fullUrl: `${base}/${type}/${resource.id}`, resource, search: { mode: 'match' } };
      }),
    };
    cache.put(cacheKey, ctx.faults.searchCacheSeconds, bundle);
    sendFhir(res, 200, bundle);
  };

  const read = (_req: Request, res: Response, auth: AccessTokenRecord, typeName: string, id: string): void => {
    if (!isResourceType(typeName) || ctx.options.unsupportedTypes.includes(typeName)) {
      throw new FhirError(404, 'not-supported', `Resource type ${typeName} is not supported`);
    }
    const type: ResourceType = typeName;
    const vis = visibility(auth.grants, type, 'read');
    if (vis === 'none') throw new FhirError(403, 'forbidden', `The token's scopes do not allow reading ${type}`);
    const ref = ctx.store.lookup(type, id);
    if (ref === null) throw new FhirError(404, 'not-found', `${type}/${id} is not known`);
    if (ref === 'deleted') throw new FhirError(410, 'deleted', `${type}/${id} was deleted`);
    if (vis === 'patient' && ctx.store.patientOf(type, ref) !== tokenPatientIndex(ctx, auth)) {
      throw new FhirError(403, 'forbidden', `${type}/${id} is outside the token's patient compartment`);
    }
    const resource = ctx.store.resourceOf(type, ref);
    sendFhir(res, 200, resource, etag(resource));
  };

  const groupAccess = (auth: AccessTokenRecord): void => {
    if (visibility(auth.grants, 'Group', 'read') !== 'all') {
      throw new FhirError(403, 'forbidden', 'Group access needs system or user scopes');
    }
  };

  router.get('/fhir/r4/Group', handle((req, res, auth) => {
    groupAccess(auth);
    const base = fhirBase(ctx, req);
    const groups = ctx.store.groups();
    sendFhir(res, 200, {
      resourceType: 'Bundle',
      id: randomId(),
      type: 'searchset',
      total: groups.length,
      link: [{ relation: 'self', url: `${base}/Group` }],
      entry: groups.map((g) => ({ fullUrl: `${base}/Group/${g.id}`, resource: ctx.store.groupResource(g), search: { mode: 'match' } })),
    });
  }));
  router.get('/fhir/r4/Group/:id', handle((req, res, auth) => {
    groupAccess(auth);
    const def = ctx.store.groups().find((g) => g.id === req.params.id);
    if (!def) throw new FhirError(404, 'not-found', `Group/${String(req.params.id)} is not known`);
    sendFhir(res, 200, ctx.store.groupResource(def));
  }));

  router.get('/fhir/r4/:type', handle((req, res, auth) => search(req, res, auth, String(req.params.type), queryPairs(req))));
  router.post(
    '/fhir/r4/:type/_search',
    express.urlencoded({ extended: false }),
    handle((req, res, auth) => {
      if (!req.is('application/x-www-form-urlencoded')) {
        throw new FhirError(400, 'invalid', 'POST _search needs an application/x-www-form-urlencoded body');
      }
      search(req, res, auth, String(req.params.type), [...queryPairs(req), ...formPairs(req)]);
    }),
  );
  router.get('/fhir/r4/:type/:id', handle((req, res, auth) => read(req, res, auth, String(req.params.type), String(req.params.id))));

  // Documents referenced by DiagnosticReport.presentedForm.url.
  router.get('/documents/:file', (req, res) => {
    if (!authenticate(ctx, req, res)) return;
    const id = String(req.params.file).replace(/\.pdf$/, '');
    const report = ctx.store.get('DiagnosticReport', id);
    if (!report || report === 'deleted') return sendOutcome(res, 404, 'not-found', 'No such document');
    res.type('application/pdf').send(minimalPdf(`Report ${id}: ${String(report.conclusion ?? '')}`));
  });

  router.all('/fhir/r4/{*rest}', (req, res) => {
    const first = req.path.split('/')[3] ?? '';
    if (isResourceType(first) || first === 'Group') {
      sendOutcome(res, 405, 'not-supported', `${req.method} is not supported here (read-only server)`, { Allow: 'GET' });
    } else {
      sendOutcome(res, 404, 'not-supported', `Unknown resource type or path: ${req.path}`);
    }
  });
  return router;
}

export function randomId(): string {
  return globalThis.crypto.randomUUID();
}

function minimalPdf(text: string): Buffer {
  const safe = text.replace(/[()\\]/g, ' ').slice(0, 200);
  const stream = `BT /F1 12 Tf 72 720 Td (${safe}) Tj ET`;
  const objects = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>',
    `<< /Length ${stream.length} >>\nstream\n${stream}\nendstream`,
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
  ];
  let out = '%PDF-1.4\n';
  const offsets: number[] = [];
  objects.forEach((o, i) => {
    offsets.push(out.length);
    out += `${i + 1} 0 obj\n${o}\nendobj\n`;
  });
  const xref = out.length;
  out += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`;
  for (const off of offsets) out += `${String(off).padStart(10, '0')} 00000 n \n`;
  out += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(out, 'latin1');
}
