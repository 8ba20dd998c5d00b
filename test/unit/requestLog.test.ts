import type { AddressInfo } from 'node:net';
import express, { Router } from 'express';
import got from 'got';
import { observeRequests } from '../../src/api/requestLog';
import { createLogger } from '../../src/logger';

describe('API request lines', () => {
  it('one line per request: route template (also under a mounted router), status, request id; never the path or query', async () => {
    const lines: string[] = [];
    const logger = createLogger('debug', {}, { write: (l: string) => void lines.push(l) });
    const app = express();
    app.use(observeRequests({ logger }));
    const router = Router();
    router.get('/items/:itemId', (_req, res) => void res.status(204).end());
    router.get('/fails/:id', async () => {
      throw new Error('boom');
    });
    app.use('/v1', router);
    app.get('/health', (_req, res) => void res.json({ ok: true }));
    app.use((_err: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => void res.status(500).end());
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const a = await got(`${base}/v1/items/secret-id-42?token=abc`, { headers: { 'x-request-id': 'trace-1' }, throwHttpErrors: false, retry: { limit: 0 } });
      expect(a.headers['x-request-id']).toBe('trace-1');
      const b = await got(`${base}/v1/fails/secret-id-43`, { headers: { 'x-request-id': 'bad id with spaces' }, throwHttpErrors: false, retry: { limit: 0 } });
      expect(b.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
      await got(`${base}/nothing/secret-id-44`, { throwHttpErrors: false, retry: { limit: 0 } });
      await got(`${base}/health`, { throwHttpErrors: false, retry: { limit: 0 } });
    } finally {
      server.close();
    }
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed.map((l) => [l.route, l.status, l.level])).toEqual([
      ['/v1/items/:itemId', 204, 30],
      ['/v1/fails/:id', 500, 40],
      ['unmatched', 404, 30],
      ['/health', 200, 20], // probes at debug
    ]);
    expect(parsed[0]).toMatchObject({ requestId: 'trace-1', method: 'GET', ms: expect.any(Number), msg: 'request' });
    expect(lines.join('')).not.toMatch(/secret-id|token=|abc/);
  });

  it('a router mounted under parameters (one per area) is logged by its template, never the values', async () => {
    const lines: string[] = [];
    const logger = createLogger('debug', {}, { write: (l: string) => void lines.push(l) });
    const app = express();
    app.use(observeRequests({ logger }));
    const jobs = Router({ mergeParams: true });
    jobs.get('/jobs/:jobId', (_req, res) => void res.status(204).end());
    const api = Router();
    api.use('/:provider', jobs);
    app.use('/api', api);
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      await got(`${base}/api/secret-provider/jobs/secret-job-1`, { throwHttpErrors: false, retry: { limit: 0 } });
    } finally {
      server.close();
    }
    expect(lines.map((l) => (JSON.parse(l) as { route: string }).route)).toEqual(['/api/:provider/jobs/:jobId']);
    expect(lines.join('')).not.toMatch(/secret-/);
  });
});
