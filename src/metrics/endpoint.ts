import { createHash, timingSafeEqual } from 'node:crypto';
import http, { type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RequestHandler } from 'express';
import type { Registry } from 'prom-client';
import type { Logger } from '../logger';

const UNAUTHORIZED = {
  success: false,
  error: { code: 'UNAUTHORIZED', message: 'Metrics need a credential: send Authorization: Bearer <METRICS_TOKEN> (or an API key on the API).' },
};

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * Who may read /metrics: `Authorization: Bearer <METRICS_TOKEN>` when METRICS_TOKEN is set (what a Prometheus
 * scrape config sends with `authorization: { credentials: … }`), and on the API also any API key (x-api-key or
 * Bearer), so an operator can curl it. With no token and no keys (the worker without METRICS_TOKEN) it is open:
 * the worker's listener binds to 127.0.0.1 by default. Compared in constant time, on digests.
 */
export function metricsAuthorizer(credentials: string[]): (req: IncomingMessage) => boolean {
  const accepted = credentials.filter(Boolean).map(digest);
  if (accepted.length === 0) return () => true;
  return (req) => {
    const header = req.headers['x-api-key'];
    const auth = /^Bearer\s+(.+)$/i.exec(String(req.headers.authorization ?? ''))?.[1];
    const given = (typeof header === 'string' ? header : undefined) ?? auth;
    return Boolean(given && accepted.some((k) => timingSafeEqual(k, digest(given.trim()))));
  };
}

/** Serializes the registry; a failure answers 500 without details (and never throws into the server). */
async function render(registry: Registry): Promise<{ status: number; type: string; body: string }> {
  try {
    return { status: 200, type: registry.contentType, body: await registry.metrics() };
  } catch {
    return { status: 500, type: 'text/plain; charset=utf-8', body: 'metrics unavailable\n' };
  }
}

/** GET /metrics for the API (Express). */
export function metricsRoute(registry: Registry, allowed: (req: IncomingMessage) => boolean): RequestHandler {
  return async (req, res) => {
    if (!allowed(req)) {
      // The API's error envelope, like every other refusal of the API (scrapers only read the status).
      res.set('WWW-Authenticate', 'Bearer realm="metrics"').status(401).json(UNAUTHORIZED);
      return;
    }
    const out = await render(registry);
    res.status(out.status).type(out.type).send(out.body);
  };
}

export interface MetricsServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/**
 * The worker's /metrics as configured: none when WORKER_METRICS_PORT is 0; otherwise the listener on
 * WORKER_METRICS_HOST, guarded by METRICS_TOKEN when set. A listener that cannot start (port taken) is logged as an
 * error and the worker runs on without it: syncs matter more than their metrics.
 */
export async function serveWorkerMetrics(
  config: { WORKER_METRICS_PORT: number; WORKER_METRICS_HOST: string; METRICS_TOKEN?: string },
  registry: Registry,
  logger: Logger,
): Promise<MetricsServer | undefined> {
  if (config.WORKER_METRICS_PORT === 0) return undefined;
  try {
    const server = await startMetricsServer({ registry, host: config.WORKER_METRICS_HOST, port: config.WORKER_METRICS_PORT, token: config.METRICS_TOKEN, logger });
    logger.info({ url: server.url }, 'worker metrics listening');
    return server;
  } catch (err) {
    logger.error({ err: { message: (err as Error).message }, port: config.WORKER_METRICS_PORT }, 'worker metrics listener failed to start; running without /metrics');
    return undefined;
  }
}

/**
 * The worker's own listener: GET /metrics only (anything else 404). The worker has no HTTP API, and the FHIR,
 * write and job metrics happen in its process, so Prometheus scrapes it directly. `port` 0 picks a free port.
 */
export async function startMetricsServer(opts: { registry: Registry; host: string; port: number; token?: string; logger?: Logger }): Promise<MetricsServer> {
  const allowed = metricsAuthorizer(opts.token ? [opts.token] : []);
  const server: Server = http.createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: GET /metrics\n');
      return;
    }
    if (!allowed(req)) {
      res.writeHead(401, { 'content-type': 'application/json; charset=utf-8', 'www-authenticate': 'Bearer realm="metrics"' }).end(JSON.stringify(UNAUTHORIZED));
      return;
    }
    void render(opts.registry).then((out) => res.writeHead(out.status, { 'content-type': out.type }).end(out.body));
  });
  server.on('error', (err) => opts.logger?.error({ err: { message: err.message } }, 'metrics server error'));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  return {
    url: `http://${host}:${port}/metrics`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
