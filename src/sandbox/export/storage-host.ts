/** A second listener that plays a storage host (e.g. presigned object-store URLs) for export files. */
import type { Server } from 'node:http';
import express from 'express';
import type { SandboxContext } from '../context';
import { storageFileRoute } from './files';

export function createStorageApp(ctx: SandboxContext): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.get('/bulkfiles/:id/:file', storageFileRoute(ctx));
  app.use((_req, res) => {
    res.status(404).type('text/plain').send('Not found');
  });
  return app;
}

export async function startStorageHost(ctx: SandboxContext, host: string): Promise<Server> {
  const app = createStorageApp(ctx);
  return new Promise((resolve, reject) => {
    const server = app.listen(0, host, (err?: Error) => {
      if (err) return reject(err);
      const addr = server.address();
      if (addr && typeof addr === 'object') ctx.storage.origin = `http://${formatHost(host)}:${addr.port}`;
      resolve(server);
    });
  });
}

export function formatHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}
