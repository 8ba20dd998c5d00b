/**
 * Local stand-in for the eClinicalWorks FHIR R4 sandbox (SMART on FHIR, Bulk Data, rate limits, faults).
 * Imports nothing from the rest of src/.
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { SandboxAdmin } from './admin';
import { buildApp, createSandboxApp, type SandboxExpressApp } from './app';
import { createContext } from './context';
import { formatHost, startStorageHost } from './export/storage-host';
import { resolveOptions } from './options';
import type { SandboxOptions } from './types';

export { createSandboxApp };
export type { SandboxExpressApp };
export type * from './types';
export type { SandboxAdmin, PatientSummary, ExportJobSummary, FaultsView, FaultsUpdate, IssueTokenRequest } from './admin';
export type { StatsSnapshot, KindStats } from './stats';
export type { StorageRequestRecord } from './context';
export type { PracticeSpec, PracticeInfo } from './practices';
export { RESOURCE_TYPES, EXTRA_TYPES } from './types';
export { tokenFingerprint } from './stats';
export { DEFAULT_OPTIONS, DEFAULT_FAULTS, DEFAULT_EXPORT } from './options';
export { parseRateLimitEnv } from './limits/rate-limiter';

export interface Sandbox {
  /** Origin, e.g. http://127.0.0.1:8090 */
  url: string;
  /** url + '/fhir/r4' (the default practice) */
  fhirBaseUrl: string;
  /** A practice's base URL: url + '/fhir/r4/' + code. */
  practiceBaseUrl(code: string): string;
  admin: SandboxAdmin;
  close(): Promise<void>;
}

function listen(app: SandboxExpressApp, port: number, host: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = app.listen(port, host, (err?: Error) => (err ? reject(err) : resolve(server)));
  });
}

function trackSockets(server: Server): () => void {
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return () => {
    for (const s of sockets) s.destroy();
  };
}

function closeServer(server: Server, destroyAll: () => void): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
    destroyAll();
  });
}

/** Starts the sandbox on options.port (0 = any free port) and, by default, its storage host on a free port. */
export async function startSandbox(options: Partial<SandboxOptions> = {}): Promise<Sandbox> {
  const resolved = resolveOptions(options);
  const ctx = createContext(resolved);
  const app = buildApp(ctx);
  const server = await listen(app, resolved.port, resolved.host);
  const destroyMain = trackSockets(server);
  const addr = server.address();
  const port = addr && typeof addr === 'object' ? addr.port : resolved.port;
  const url = resolved.publicUrl ?? `http://${formatHost(resolved.host)}:${port}`;
  ctx.publicUrl = url;
  let storage: Server | null = null;
  let destroyStorage = (): void => {};
  if (resolved.storageHost) {
    storage = await startStorageHost(ctx, resolved.host);
    destroyStorage = trackSockets(storage);
  }
  let closed: Promise<void> | null = null;
  return {
    url,
    fhirBaseUrl: `${url}/fhir/r4`,
    practiceBaseUrl: (code) => `${url}/fhir/r4/${code}`,
    admin: app.sandboxAdmin,
    close() {
      closed ??= Promise.all([
        closeServer(server, destroyMain),
        storage ? closeServer(storage, destroyStorage) : Promise.resolve(),
      ]).then(() => undefined);
      return closed;
    },
  };
}
