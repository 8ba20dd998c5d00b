import { setTimeout as sleep } from 'node:timers/promises';
import * as jose from 'jose';
import type { ConnectionView } from '../../src/store/connections';
import type { TestStack } from './stack';

/** What GET /api/ehr/:provider/bulk-export/:jobId answers (the fields the tests read). */
export interface BulkJobView {
  id: string;
  status: 'IN_PROGRESS' | 'COMPLETED' | 'FAILED' | 'CANCELLED';
  statusUrl?: string;
  startedAt: string;
  completedAt?: string;
  outputUrls?: string[];
  errorMessage?: string;
  since?: string;
  sinceSource?: string;
  transactionTime?: string;
  progress: {
    phase: string;
    xProgress?: string;
    polls?: number;
    notes?: string[];
    files: { total: number; done: number };
    resourcesByType: Record<string, { files: number; filesDone: number; resources: number; written: number; malformed: number }>;
    resources: number;
    malformedLines: number;
    malformedLineNumbers: Array<{ type: string; lines: number[] }>;
    deletedResources: number;
    resumedDownloads: Array<{ type: string; resumedFromLine: number; attempt: number }>;
  };
  errors: { count: number; outcomes: Array<{ resourceType: string; issue: Array<{ diagnostics?: string }> }> };
  cancelledOnServer?: { status: number };
  result?: Record<string, unknown>;
}

export async function startExport(stack: TestStack, body: Record<string, unknown>, headers: Record<string, string> = {}) {
  return stack.api.post<BulkJobView>('api/ehr/eclinicalworks/bulk-export', { json: body, headers });
}

/** Polls the API until the job is over (real time). */
export async function waitForJob(stack: TestStack, jobId: string, timeoutMs = 90_000): Promise<BulkJobView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await stack.api.get<BulkJobView>(`api/ehr/eclinicalworks/bulk-export/${jobId}`);
    if (res.statusCode !== 200) throw new Error(`GET job answered ${res.statusCode}: ${JSON.stringify(res.body)}`);
    const view = res.body.data as BulkJobView;
    if (view.status !== 'IN_PROGRESS') return view;
    if (Date.now() > deadline) throw new Error(`job ${jobId} still IN_PROGRESS after ${timeoutMs} ms: ${JSON.stringify(view)}`);
    await sleep(250);
  }
}

/** Waits (real time) until `check` returns a truthy value. */
export async function eventually<T>(check: () => T | Promise<T>, what: string, timeoutMs = 30_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** Registers a backend-services client in the sandbox and connects it through the API (system/*.read). */
export async function connectBackend(stack: TestStack, clientId = `backend-${Math.random().toString(36).slice(2, 10)}`): Promise<ConnectionView> {
  const alg = 'ES384';
  const { publicKey, privateKey } = await jose.generateKeyPair(alg, { extractable: true });
  const kid = `key-${clientId}`;
  stack.sandbox.admin.registerClient({ clientId, jwks: { keys: [{ ...(await jose.exportJWK(publicKey)), kid, alg } as { kty: string }] } });
  const res = await stack.api.post<ConnectionView>('api/ehr/eclinicalworks/connections/backend', {
    json: { clientId, privateKey: await jose.exportPKCS8(privateKey), alg, kid },
  });
  if (res.statusCode !== 201 || !res.body.data) throw new Error(`backend connection answered ${res.statusCode}: ${JSON.stringify(res.body)}`);
  return res.body.data;
}

/** Stored resources of a connection and type, keyed by id (the resource as stored). */
export async function storedResources(stack: TestStack, connectionId: string, resourceType: string) {
  const docs = await stack.services.resources.col.find({ connectionId, resourceType }).toArray();
  return docs;
}
