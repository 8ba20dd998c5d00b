import { randomUUID } from 'node:crypto';
import type { Request, RequestHandler } from 'express';
import type { Logger } from '../logger';
import type { ApiMetrics } from '../metrics/api';

/**
 * The route template that handled a request (`/api/ehr/:provider/enhanced-sync/:jobId`), never the raw path: raw
 * paths carry job and connection ids (unbounded metric labels, and ids in logs do not group). `unmatched` when no
 * route handled it: an unknown path, or a request refused before routing (API-key wall, unreadable body).
 * The router sets `req.route` when a route matches; the mount path (`req.baseUrl`) is read at that moment, because
 * the router restores it when an error leaves a mounted router.
 */
function trackRoute(req: Request): () => string {
  let template: string | undefined;
  let route: unknown = req.route;
  Object.defineProperty(req, 'route', {
    configurable: true,
    enumerable: true,
    get: () => route,
    set(value: unknown) {
      route = value;
      const path = (value as { path?: unknown } | undefined)?.path;
      if (typeof path === 'string') template = `${mountTemplate(req.baseUrl ?? '', req.params ?? {})}${path}`;
    },
  });
  return () => template ?? 'unmatched';
}

/**
 * The mount path as its template: routers are mounted per area under parameters (`/api/ehr/:provider`), and
 * `req.baseUrl` holds the values, so each segment that is a parameter's value is named by its parameter again.
 */
function mountTemplate(baseUrl: string, params: Record<string, unknown>): string {
  const names = new Map<string, string>();
  for (const [name, value] of Object.entries(params)) if (typeof value === 'string' && value) names.set(encodeURIComponent(value), name);
  return baseUrl
    .split('/')
    .map((segment, i) => (i > 0 && names.has(segment) ? `:${names.get(segment)}` : segment))
    .join('/');
}

const QUIET_ROUTES = new Set(['/metrics', '/health']);

/** A caller's X-Request-Id is kept when it is a plain token; otherwise (or without one) a new UUID. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,100}$/;

/**
 * One log line and one metric observation per request, when the answer has been sent: method, route template,
 * status, milliseconds, request id. Never headers, bodies, query strings or the raw path (ids, and query strings
 * may carry secrets such as the OAuth code and state). The request id is echoed in X-Request-Id.
 */
export function observeRequests({ logger, metrics }: { logger: Logger; metrics?: ApiMetrics }): RequestHandler {
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    const routeTemplate = trackRoute(req);
    const given = req.get('x-request-id');
    const requestId = given && REQUEST_ID.test(given) ? given : randomUUID();
    res.setHeader('X-Request-Id', requestId);
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      try {
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        const route = routeTemplate();
        // A client that hung up before the answer: status 499, as nginx logs it.
        const status = res.writableFinished ? res.statusCode : 499;
        metrics?.request(req.method, route, status, seconds);
        const line = { requestId, method: req.method, route, status, ms: Math.round(seconds * 1000) };
        if (status >= 500) logger.warn(line, 'request');
        else if (QUIET_ROUTES.has(route) && status < 400) logger.debug(line, 'request'); // scrapes and probes: every few seconds
        else logger.info(line, 'request');
      } catch {
        /* logging and metrics never affect the answer */
      }
    };
    res.once('finish', finish);
    res.once('close', finish);
    next();
  };
}
