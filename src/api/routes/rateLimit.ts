import { Router } from 'express';
import { z } from 'zod';
import type { Services } from '../../services';
import { isAllowedBaseUrl } from '../../providers/registry';
import { BadRequestError } from '../../errors';
import { answer } from '../answer';
import * as A from '../answerSchemas';
import { ProviderIdSchema, parse } from '../validate';

export const RateLimitQuerySchema = z.object({
  /** Quotas shared by base URL: which practice. Default: every base URL the limiter has seen for the provider. */
  baseUrl: z.url().max(2048).optional(),
});

/** Which blocks to lift; without either, every block of the provider. Strict: a misspelt filter lifts nothing. */
export const LiftBlocksQuerySchema = z
  .object({
    /** A quota name of the provider's rate limit (e.g. `practice`). */
    quota: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be a quota name of the provider').optional(),
    /** Only the blocks of quotas shared by this FHIR base URL. */
    baseUrl: z.url().max(2048).optional(),
  })
  .strict();

/**
 * GET /api/ehr/:provider/rate-limit[?baseUrl=…] — the shared rate limiter's budget per quota key:
 * `{quotas: [{name, kind, shareBy, key, limit, used, remaining, resetAt, blockedUntil?}], blocks: [{key, quota,
 * scope, blockedUntil, updatedAt}]}` (blocks: every one of the provider that still holds requests, as honoured:
 * never longer than RETRY_AFTER_MAX_SECONDS after it was written).
 * DELETE /api/ehr/:provider/rate-limit/blocks[?quota=…&baseUrl=…] — lifts them (operators: a server that asked for
 * an absurd wait, or a block no longer needed); every process sends again at once. Idempotent.
 * Mounted under /api/ehr/:provider.
 */
export function rateLimitRoutes(services: Services): Router {
  const routes = Router({ mergeParams: true });
  routes.get('/rate-limit', async (req, res) => {
    const { provider } = parse(z.object({ provider: ProviderIdSchema }), req.params, 'path');
    const { baseUrl } = parse(RateLimitQuerySchema, req.query, 'query');
    const p = services.registry.get(provider);
    if (baseUrl && !isAllowedBaseUrl(p, baseUrl)) throw new BadRequestError(`baseUrl is not a FHIR base URL of ${provider}.`);
    const [quotas, blocks] = await Promise.all([services.rateBudget.budget(provider, baseUrl), services.rateLimitBlocks.listBlocks(provider)]);
    answer(res, A.RateLimitAnswerSchema, { provider, quotas, blocks });
  });
  routes.delete('/rate-limit/blocks', async (req, res) => {
    const { provider } = parse(z.object({ provider: ProviderIdSchema }), req.params, 'path');
    const filter = parse(LiftBlocksQuerySchema, req.query, 'query');
    const p = services.registry.get(provider);
    if (filter.baseUrl && !isAllowedBaseUrl(p, filter.baseUrl)) throw new BadRequestError(`baseUrl is not a FHIR base URL of ${provider}.`);
    // The provider's quotas and those practices have of their own (rateLimit.perBaseUrl).
    const names = [...new Set([...p.rateLimit.quotas, ...p.rateLimit.perBaseUrl.flatMap((e) => e.quotas)].map((q) => q.name))];
    if (filter.quota && !names.includes(filter.quota)) {
      throw new BadRequestError(`quota "${filter.quota}" is not a quota of ${provider} (its quotas: ${names.join(', ') || 'none'}).`);
    }
    const { lifted } = await services.rateLimitBlocks.liftBlocks(provider, { quota: filter.quota, scope: filter.baseUrl });
    answer(res, A.LiftBlocksAnswerSchema, { provider, lifted, count: lifted.length });
  });
  return routes;
}
