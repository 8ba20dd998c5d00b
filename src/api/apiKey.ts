import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { fail } from './envelope';

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * The API's own credential: `X-API-Key: <key>` or `Authorization: Bearer <key>`. Compared in constant time
 * (on digests, so length differences leak nothing).
 */
export function requireApiKey(keys: string[]): RequestHandler {
  const accepted = keys.map(digest);
  return (req, res, next) => {
    const header = req.get('x-api-key') ?? /^Bearer\s+(.+)$/i.exec(req.get('authorization') ?? '')?.[1];
    if (header && accepted.some((k) => timingSafeEqual(k, digest(header.trim())))) return next();
    res.set('WWW-Authenticate', 'Bearer realm="ehr-sync"');
    fail(res, 401, 'UNAUTHORIZED', header ? 'The API key is not valid.' : 'This API requires a credential: send X-API-Key or Authorization: Bearer <key>.');
  };
}
