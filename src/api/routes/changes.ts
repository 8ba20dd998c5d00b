import { Router } from 'express';
import { z } from 'zod';
import type { Services } from '../../services';
import { BadRequestError } from '../../errors';
import { canonicalBaseUrl } from '../../fhir/urls';
import { isAllowedBaseUrl } from '../../providers/registry';
import { ChangeFeedReader, type ChangeEntry } from '../../store/changeFeed/feed';
import { decodeCursor, encodeCursor } from '../../store/changeFeed/cursor';
import { practiceScope } from '../../store/changeFeed/scope';
import { answer } from '../answer';
import * as A from '../answerSchemas';
import { ConnectionIdSchema, ProviderIdSchema, parse } from '../validate';
import { connectionOfProvider } from './connections';

export const CHANGES_DEFAULT_LIMIT = 500;
export const CHANGES_MAX_LIMIT = 5000;

export const ChangesQuerySchema = z.strictObject({
  /** One connection's changes. */
  connectionId: ConnectionIdSchema.optional(),
  /** A practice's changes: the FHIR base URL its connections were authorized against (e.g. https://host/fhir/r4/ABC). */
  practice: z.url().max(2048).optional(),
  /** The nextCursor of a previous answer; absent: from the beginning. */
  cursor: z.string().max(200).optional(),
  limit: z.coerce.number().int().min(1).max(CHANGES_MAX_LIMIT).default(CHANGES_DEFAULT_LIMIT),
});

const toAnswer = (c: ChangeEntry): z.input<typeof A.ChangeSchema> => ({
  seq: `${c.n}.${c.i}`,
  connectionId: c.connectionId,
  resourceType: c.resourceType,
  id: c.id,
  kind: c.kind,
  ...(c.versionId ? { versionId: c.versionId } : {}),
  lastUpdated: c.lastUpdated.toISOString(),
  changedAt: c.changedAt.toISOString(),
  ...(c.resource ? { resource: c.resource as { resourceType: string } } : {}),
});

/**
 * GET /api/ehr/:provider/changes?connectionId|practice&cursor&limit — what was written since the cursor (the change
 * feed, src/store/changeFeed/): created, updated and deleted resources in the practice's sequence order, paged.
 * Mounted under /api/ehr/:provider.
 */
export function changeRoutes(services: Services): Router {
  const routes = Router({ mergeParams: true });
  const reader = new ChangeFeedReader(services.db);

  routes.get('/changes', async (req, res) => {
    const { provider } = parse(z.object({ provider: ProviderIdSchema }), req.params, 'path');
    const q = parse(ChangesQuerySchema, req.query, 'query');
    if (Boolean(q.connectionId) === Boolean(q.practice)) {
      throw new BadRequestError('Invalid request query: give exactly one of connectionId (one connection\'s changes) or practice (a practice\'s FHIR base URL: the changes of all its connections).', [
        { path: [q.connectionId ? 'practice' : 'connectionId'], message: 'exactly one of connectionId or practice' },
      ]);
    }
    let practice: string;
    if (q.connectionId) {
      practice = (await connectionOfProvider(services, provider, q.connectionId)).fhirBaseUrl;
    } else {
      const p = services.registry.get(provider);
      const canonical = canonicalBaseUrl(q.practice as string);
      if ('refused' in canonical) throw new BadRequestError(`Invalid request query: practice: ${canonical.refused}.`, [{ path: ['practice'], message: canonical.refused }]);
      if (!isAllowedBaseUrl(p, canonical.url)) throw new BadRequestError(`Invalid request query: practice: not a FHIR base URL of ${provider}.`, [{ path: ['practice'], message: `not a FHIR base URL of ${provider}` }]);
      practice = canonical.url;
    }
    const scope = practiceScope(provider, practice);
    const after = q.cursor === undefined ? undefined : decodeCursor(q.cursor, scope, q.connectionId);
    const page = await reader.page({ scope, connectionId: q.connectionId, after, limit: q.limit });
    answer(res, A.ChangesAnswerSchema, {
      provider,
      ...(q.connectionId ? { connectionId: q.connectionId } : {}),
      practice,
      count: page.changes.length,
      changes: page.changes.map(toAnswer),
      nextCursor: encodeCursor(page.next, scope, q.connectionId),
      hasMore: page.hasMore,
    });
  });
  return routes;
}
