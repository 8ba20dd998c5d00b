import { Router } from 'express';
import { z } from 'zod';
import type { Services } from '../../services';
import { R4ResourceTypeSchema, isR4ResourceType } from '../../fhir/resourceTypes';
import { StoredResourcesQuerySchema, storedResourcesFilter } from '../resourceSearch';
import { answer } from '../answer';
import * as A from '../answerSchemas';
import { ConnectionIdSchema, ProviderIdSchema, parse } from '../validate';
import { connectionOfProvider } from './connections';

export const StoredCountsQuerySchema = z.strictObject({
  connectionId: ConnectionIdSchema,
  patient: z.string().regex(/^(Patient\/)?[A-Za-z0-9.-]{1,64}$/, 'must be a FHIR id or a Patient reference such as Patient/123').optional(),
});

export { StoredResourcesQuerySchema };

/**
 * Stored resources read back from MongoDB (not from the EHR), paged by a cursor: for example the spec's example 3,
 * a patient's completed Communications sent since a date: ?status=completed&sent=ge2024-01-01. The query follows
 * the FHIR R4 search rules (src/api/resourceSearch.ts).
 * Mounted under /api/ehr/:provider/resources.
 */
export function resourceRoutes(services: Services): Router {
  const routes = Router({ mergeParams: true });

  // How many resources of each type are stored for a connection (what a sync or export left in MongoDB).
  routes.get('/', async (req, res) => {
    const { provider } = parse(z.object({ provider: ProviderIdSchema }), req.params, 'path');
    const q = parse(StoredCountsQuerySchema, req.query, 'query');
    const connection = await connectionOfProvider(services, provider, q.connectionId);
    const patient = q.patient?.replace(/^Patient\//, '') ?? connection.patientId;
    // One grouped count, served by the (connectionId, resourceType, ...) index (ResourceStore.countByType).
    const byType = await services.resources.countByType({ connectionId: connection._id, ...(patient ? { patientId: patient } : {}) });
    // Types in order; countByType holds no zero counts.
    const counts = Object.entries(byType)
      .filter(([t]) => isR4ResourceType(t))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    answer(res, A.StoredCountsAnswerSchema, { connectionId: connection._id, ...(patient ? { patient } : {}), counts: Object.fromEntries(counts), total: counts.reduce((n, [, c]) => n + c, 0) });
  });

  routes.get('/:resourceType', async (req, res) => {
    const { provider, resourceType } = parse(z.object({ provider: ProviderIdSchema, resourceType: R4ResourceTypeSchema }), req.params, 'path');
    const q = parse(StoredResourcesQuerySchema, req.query, 'query');
    const connection = await connectionOfProvider(services, provider, q.connectionId);
    const filter = storedResourcesFilter({ connectionId: connection._id, resourceType, defaultPatient: connection.patientId, query: q });
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
