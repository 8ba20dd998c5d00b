/** HTTP face of the admin API, under /_sandbox (JSON, no authentication: local test control only). */
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { z } from 'zod';
import type { SandboxAdmin } from './admin';
import { PracticeError } from './practices';
import { PATH_KINDS, isResourceType, type PathKind, type RateLimitConfig } from './types';

const jwk = z.looseObject({ kty: z.string(), kid: z.string().optional(), alg: z.string().optional() });
const clientSchema = z.object({
  clientId: z.string().min(1),
  clientSecret: z.string().min(1).optional(),
  redirectUris: z.array(z.string().url()).optional(),
  jwks: z.object({ keys: z.array(jwk) }).optional(),
  jwksUrl: z.url({ protocol: /^https?$/ }).optional(),
  scopes: z.array(z.string()).optional(),
});

const exportSchema = z
  .object({
    durationMs: z.number().int().min(0),
    neverFinish: z.boolean(),
    finishAfterPolls: z.number().int().min(0),
    failJobs: z.boolean(),
    statusErrors: z.number().int().min(0),
    statusErrorKind: z.enum(['transient', '500', '503']),
    minPollIntervalMs: z.number().int().min(0),
    retryAfterSeconds: z.number().int().min(0),
    retryAfterBelowMinPoll: z.boolean(),
    retryAfterFormat: z.enum(['seconds', 'http-date']),
    requiresAccessToken: z.union([z.boolean(), z.literal('auto')]),
    fileOrigin: z.enum(['same', 'storage', 'redirect']),
    maxResourcesPerFile: z.number().int().min(1),
    malformedLines: z.number().int().min(0),
    duplicateResources: z.number().int().min(0),
    errorResources: z.number().int().min(0),
    errorTypes: z.array(z.string().refine(isResourceType, 'must be a resource type the sandbox serves')),
    fileTtlSeconds: z.number().min(0),
    maxConcurrentJobs: z.number().int().min(0),
    statusUrlOrigin: z.union([z.literal(''), z.url({ protocol: /^https?$/ })]),
  })
  .partial()
  .strict();

const faultsSchema = z
  .object({
    errorRate: z.number().min(0).max(1),
    errorBurst: z.number().int().min(0),
    errorUntil: z.number().int().min(0),
    errorStatuses: z.array(z.number().int().min(500).max(599)),
    delayMs: z.number().int().min(0),
    dropRate: z.number().min(0).max(1),
    dropNext: z.number().int().min(0),
    storm429: z.number().int().min(0),
    storm429RetryAfterSeconds: z.number().int().min(0),
    storm429RetryAfter: z.string().max(200),
    searchCacheSeconds: z.number().int().min(0).max(86400),
    clockSkewMs: z.number().int().min(-31_536_000_000).max(31_536_000_000),
    nextLinkOrigin: z.union([z.literal(''), z.url({ protocol: /^https?$/ })]),
    accessTokenTtlSeconds: z.number().min(1),
    backendTokenTtlSeconds: z.number().min(1),
    applyTo: z.array(z.enum(PATH_KINDS as unknown as [PathKind, ...PathKind[]])),
    export: exportSchema,
  })
  .partial()
  .strict();

const rateLimitSchema = z.union([
  z.null(),
  z.object({ mode: z.literal('token-bucket'), ratePerSecond: z.number().positive(), burst: z.number().positive(), dailyLimit: z.number().positive().optional() }),
  z.object({
    mode: z.literal('fixed-window'),
    limit: z.number().positive(),
    windowSeconds: z.number().positive(),
    blockRestOfWindow: z.boolean().optional(),
    dailyLimit: z.number().positive().optional(),
  }),
  z.object({ mode: z.literal('daily-only'), dailyLimit: z.number().positive() }),
]);

const perType = z.record(z.string().refine(isResourceType, 'must be a resource type the sandbox serves'), z.number().int().min(0).max(9999));
const practiceSchema = z
  .object({
    code: z.string().min(1).max(64),
    patients: z.number().int().min(1).max(999_999).optional(),
    resourcesPerPatient: z.union([z.number().int().min(0).max(9999), perType]).optional(),
    largePatients: z.number().int().min(0).optional(),
    largePatientFactor: z.number().int().min(1).max(100).optional(),
    seed: z.number().int().optional(),
    rateLimit: rateLimitSchema.optional(),
  })
  .strict();

const tokenSchema = z.object({
  clientId: z.string().optional(),
  scopes: z.union([z.string(), z.array(z.string())]),
  patient: z.string().optional(),
  ttlSeconds: z.number().positive().optional(),
});

class AdminError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const result = schema.safeParse(body);
  if (!result.success) throw new AdminError(400, z.prettifyError(result.error));
  return result.data;
}

function typeParam(req: Request) {
  const type = String(req.params.type);
  if (!isResourceType(type)) throw new AdminError(404, `Unsupported resource type ${type}`);
  return type;
}

export function adminRouter(admin: SandboxAdmin): Router {
  const r = express.Router();
  r.use(express.json({ type: ['application/json', 'application/fhir+json'], limit: '10mb' }));
  const wrap =
    (fn: (req: Request, res: Response) => unknown) =>
    (req: Request, res: Response, next: NextFunction): void => {
      try {
        const out = fn(req, res);
        if (!res.headersSent) res.json(out ?? { ok: true });
      } catch (err) {
        if (err instanceof AdminError || err instanceof PracticeError) res.status(err.status).json({ error: err.message });
        else if (err instanceof Error) res.status(400).json({ error: err.message });
        else next(err);
      }
    };

  // Practices: create and list here; everything else of one practice under /practices/{code}/ (same endpoints).
  const practiceRouters = new Map<string, Router>();
  r.get('/practices', wrap(() => admin.listPractices()));
  r.post('/practices', wrap((req, res) => {
    const spec = parse(practiceSchema, req.body) as Parameters<SandboxAdmin['createPractice']>[0];
    res.status(201).json(admin.createPractice(spec));
  }));
  r.use('/practices/:code', (req: Request, res: Response, next: NextFunction) => {
    const code = String(req.params.code);
    let router = practiceRouters.get(code);
    if (!router) {
      try {
        router = adminRouter(admin.practice(code));
      } catch (err) {
        if (err instanceof PracticeError) {
          res.status(err.status).json({ error: err.message });
          return;
        }
        throw err;
      }
      practiceRouters.set(code, router);
    }
    router(req, res, next);
  });
  r.get('/info', wrap(() => ({ counts: admin.counts(), storageOrigin: admin.storageOrigin(), rateLimit: admin.getRateLimit() })));
  r.get('/clients', wrap(() => admin.listClients().map((c) => ({ ...c, clientSecret: c.clientSecret ? '***' : undefined }))));
  r.post('/clients', wrap((req, res) => {
    const c = admin.registerClient(parse(clientSchema, req.body));
    res.status(201).json({ ...c, clientSecret: c.clientSecret ? '***' : undefined });
  }));
  r.get('/patients', wrap(() => admin.listPatients()));
  r.get('/resources/:type', wrap((req) => {
    const q = new URL(req.originalUrl, 'http://x').searchParams;
    const limit = q.get('limit');
    return admin.getResources(typeParam(req), {
      patient: q.get('patient') ?? undefined,
      limit: limit ? Number(limit) : undefined,
    });
  }));
  r.get('/resources/:type/:id', wrap((req) => {
    const res = admin.getResource(typeParam(req), String(req.params.id));
    if (!res) throw new AdminError(404, 'Not found');
    return res;
  }));
  r.post('/resources/:type', wrap((req, res) => {
    const body = parse(z.looseObject({ id: z.string().optional() }), req.body);
    res.status(201).json(admin.addResource(typeParam(req), body));
  }));
  const update = wrap((req) => {
    const type = typeParam(req);
    const id = String(req.params.id);
    if (!admin.getResource(type, id)) throw new AdminError(404, 'Not found');
    return admin.updateResource(type, id, parse(z.record(z.string(), z.unknown()), req.body ?? {}));
  });
  r.patch('/resources/:type/:id', update);
  r.post('/resources/:type/:id/update', update);
  r.delete('/resources/:type/:id', wrap((req) => {
    if (!admin.deleteResource(typeParam(req), String(req.params.id))) throw new AdminError(404, 'Not found');
    return { deleted: true };
  }));
  r.post('/tokens/expire', wrap(() => ({ expired: admin.expireAccessTokens() })));
  r.post('/tokens', wrap((req) => admin.issueToken(parse(tokenSchema, req.body))));
  r.get('/faults', wrap(() => admin.getFaults()));
  r.put('/faults', wrap((req) => admin.setFaults(parse(faultsSchema, req.body))));
  r.patch('/faults', wrap((req) => admin.setFaults(parse(faultsSchema, req.body))));
  r.delete('/faults', wrap(() => admin.resetFaults()));
  r.get('/rate-limit', wrap(() => ({ rateLimit: admin.getRateLimit() })));
  r.put('/rate-limit', wrap((req) => {
    const body = req.body as { rateLimit?: unknown } | undefined;
    const cfg = parse(rateLimitSchema, body && 'rateLimit' in body ? body.rateLimit : body) as RateLimitConfig | null;
    return { rateLimit: admin.setRateLimit(cfg) };
  }));
  r.get('/stats', wrap(() => admin.getStats()));
  r.post('/stats/reset', wrap(() => admin.resetStats()));
  r.delete('/stats', wrap(() => admin.resetStats()));
  r.get('/storage', wrap(() => ({ origin: admin.storageOrigin(), requests: admin.storageRequests() })));
  r.delete('/storage', wrap(() => admin.clearStorageRequests()));
  r.get('/export/jobs', wrap(() => admin.listExportJobs()));
  r.post('/export/expire', wrap((req) => {
    const body = req.body as { jobId?: unknown } | undefined;
    return { expired: admin.expireExportFiles(typeof body?.jobId === 'string' ? body.jobId : undefined) };
  }));
  r.use((_req: Request, res: Response) => {
    res.status(404).json({ error: 'Unknown admin endpoint' });
  });
  return r;
}
