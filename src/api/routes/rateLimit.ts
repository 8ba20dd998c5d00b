import { Router } from 'express';
import { z } from 'zod';
import type { Services } from '../../services';
import { isAllowedBaseUrl } from '../../providers/registry';
import { BadRequestError } from '../../errors';
import { ok } from '../envelope';
import { ProviderIdSchema, parse } from '../validate';

export const RateLimitQuerySchema = z.object({
  /** Quotas shared by base URL: which practice. Default: every base URL the limiter has seen for the provider. */
  baseUrl: z.url().max(2048).optional(),
});

/**
 * GET /api/ehr/:provider/rate-limit[?baseUrl=…] — the shared rate limiter's budget per quota key:
 * `{quotas: [{name, kind, shareBy, key, limit, used, remaining, resetAt, blockedUntil?}]}`.
 */
export function rateLimitRoutes(services: Services): Router {
  const routes = Router();
  routes.get('/api/ehr/:provider/rate-limit', async (req, res) => {
    const { provider } = parse(z.object({ provider: ProviderIdSchema }), req.params, 'path');
    const { baseUrl } = parse(RateLimitQuerySchema, req.query, 'query');
    const p = services.registry.get(provider);
    if (baseUrl && !isAllowedBaseUrl(p, baseUrl)) throw new BadRequestError(`baseUrl is not a FHIR base URL of ${provider}.`);
    ok(res, { provider, quotas: await services.rateBudget.budget(provider, baseUrl) });
  });
  return routes;
}
