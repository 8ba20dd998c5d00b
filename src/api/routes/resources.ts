import { Router } from 'express';
import { z } from 'zod';
import type { Filter } from 'mongodb';
import type { Services } from '../../services';
import { R4ResourceTypeSchema, isR4ResourceType } from '../../fhir/resourceTypes';
import type { ResourceDoc } from '../../store/resources';
import { BadRequestError } from '../../errors';
import { answer } from '../answer';
import * as A from '../answerSchemas';
import { ConnectionIdSchema, ProviderIdSchema, parse } from '../validate';
import { connectionOfProvider } from './connections';

/** FHIR-style date comparison: ge2024-01-01, lt2024-02-01T00:00:00Z, or a bare date (= eq day). */
const DateParam = z.string().regex(/^(eq|ge|gt|le|lt)?\d{4}-\d{2}-\d{2}(T[0-9:.]+(Z|[+-]\d{2}:\d{2}))?$/, 'must be like ge2024-01-01 or lt2024-02-01T00:00:00Z');

export const StoredCountsQuerySchema = z.object({
  connectionId: ConnectionIdSchema,
  patient: z.string().regex(/^[A-Za-z0-9.-]{1,64}$/, 'must be a FHIR id').optional(),
});

export const StoredResourcesQuerySchema = z.object({
  connectionId: ConnectionIdSchema,
  patient: z.string().regex(/^[A-Za-z0-9.-]{1,64}$/, 'must be a FHIR id').optional(),
  status: z.string().regex(/^[a-z-]{1,32}$/, 'must be a FHIR status code such as completed').optional(),
  sent: DateParam.optional(),
  _lastUpdated: DateParam.optional(),
  _count: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().max(300).optional(),
});

const OPS = { eq: '$eq', ge: '$gte', gt: '$gt', le: '$lte', lt: '$lt' } as const;

function dateFilter(value: string): { op: (typeof OPS)[keyof typeof OPS]; iso: string } {
  const m = /^(eq|ge|gt|le|lt)?(.*)$/.exec(value)!;
  const t = Date.parse(m[2] as string);
  // Date.parse rolls impossible days over (2024-02-30 → March 1): the calendar day must exist as written.
  const [y, mo, d] = (m[2] as string).slice(0, 10).split('-').map(Number) as [number, number, number];
  const day = new Date(0);
  day.setUTCFullYear(y, mo - 1, d);
  if (!Number.isFinite(t) || day.getUTCFullYear() !== y || day.getUTCMonth() !== mo - 1 || day.getUTCDate() !== d) {
    throw new BadRequestError(`"${value}" is not a valid date.`);
  }
  return { op: OPS[(m[1] ?? 'eq') as keyof typeof OPS], iso: new Date(t).toISOString() };
}

/**
 * Stored resources read back from MongoDB (not from the EHR), paged by a cursor: for example the spec's example 3,
 * a patient's completed Communications sent since a date: ?status=completed&sent=ge2024-01-01.
 */
export function resourceRoutes(services: Services): Router {
  const routes = Router();

  // How many resources of each type are stored for a connection (what a sync or export left in MongoDB).
  routes.get('/api/ehr/:provider/resources', async (req, res) => {
    const { provider } = parse(z.object({ provider: ProviderIdSchema }), req.params, 'path');
    const q = parse(StoredCountsQuerySchema, req.query, 'query');
    const connection = await connectionOfProvider(services, provider, q.connectionId);
    const patient = q.patient ?? connection.patientId;
    // Which types are stored (any R4 type may be), then one countDocuments per type: served by the
    // (connectionId, resourceType, ...) index, and portable to FerretDB.
    const base: Filter<ResourceDoc> = { connectionId: connection._id, ...(patient ? { patientId: patient } : {}) };
    const stored = (await services.resources.col.distinct('resourceType', base)).filter((t): t is string => typeof t === 'string' && isR4ResourceType(t));
    const counts = await Promise.all(
      stored.sort().map(async (resourceType) => {
        const filter: Filter<ResourceDoc> = { connectionId: connection._id, resourceType };
        if (patient) filter.patientId = patient;
        return [resourceType, await services.resources.col.countDocuments(filter)] as const;
      }),
    );
    const nonZero = Object.fromEntries(counts.filter(([, n]) => n > 0));
    answer(res, A.StoredCountsAnswerSchema, { connectionId: connection._id, ...(patient ? { patient } : {}), counts: nonZero, total: counts.reduce((n, [, c]) => n + c, 0) });
  });

  routes.get('/api/ehr/:provider/resources/:resourceType', async (req, res) => {
    const { provider, resourceType } = parse(z.object({ provider: ProviderIdSchema, resourceType: R4ResourceTypeSchema }), req.params, 'path');
    const q = parse(StoredResourcesQuerySchema, req.query, 'query');
    const connection = await connectionOfProvider(services, provider, q.connectionId);
    const filter: Filter<ResourceDoc> = { connectionId: connection._id, resourceType };
    const patient = q.patient ?? connection.patientId;
    if (patient) filter.patientId = patient;
    if (q.status) filter['resource.status'] = q.status;
    if (q._lastUpdated) {
      const { op, iso } = dateFilter(q._lastUpdated);
      filter.lastUpdated = { [op]: new Date(iso) };
    }
    if (q.sent) {
      // `sent` is an ISO string in the resource; UTC-normalised strings compare in time order.
      const { op, iso } = dateFilter(q.sent);
      filter['resource.sent'] = { [op]: iso };
    }
    if (q.cursor) filter._id = { $gt: q.cursor };
    const docs = await services.resources.col.find(filter).sort({ _id: 1 }).limit(q._count + 1).toArray();
    const page = docs.slice(0, q._count);
    answer(res, A.StoredResourcesAnswerSchema, {
      resourceType,
      count: page.length,
      resources: page.map((d) => d.resource),
      nextCursor: docs.length > q._count ? page[page.length - 1]?._id : undefined,
    });
  });
  return routes;
}
