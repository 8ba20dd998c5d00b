import http, { type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { BulkDataClient, type ExportManifest } from '../../src/fhir/bulkData';
import { FhirClient } from '../../src/fhir/client';
import type { FhirConnection } from '../../src/fhir/connection';
import { createHttpClient } from '../../src/fhir/http';
import { unlimited } from '../../src/fhir/limiter';
import { parseObjectLine } from '../../src/fhir/ndjson';
import { startSandbox, type Sandbox } from '../../src/sandbox';

/**
 * The Bulk Data client and the FHIR client's URL rules against the sandbox app in-process (no Temporal, no
 * database): a token source that hands out one sandbox token, no rate limit, and a second tiny server playing
 * "another host" that records every request it gets (it must get none).
 */
let sb: Sandbox;
let fhir: FhirClient;
let bulk: BulkDataClient;
let conn: FhirConnection;
let foreign: Server;
let foreignOrigin: string;
const foreignHits: Array<{ url?: string; authorization?: string }> = [];

beforeAll(async () => {
  sb = await startSandbox({ port: 0, patients: 3, resourcesPerPatient: 2, defaultPageSize: 2, export: { durationMs: 0 } });
  const token = sb.admin.issueToken({ scopes: 'system/*.read' }).accessToken;
  fhir = new FhirClient(createHttpClient({ retryLimit: 0 }), { accessToken: async () => ({ token }) }, unlimited);
  bulk = new BulkDataClient(fhir);
  conn = { id: 'conn_bulkdataclient', provider: 'eclinicalworks', baseUrl: sb.fhirBaseUrl, usesToken: true };
  foreign = http.createServer((req, res) => {
    foreignHits.push({ url: req.url, authorization: req.headers.authorization });
    res.writeHead(200, { 'content-type': 'application/fhir+json' }).end('{"resourceType":"Bundle","entry":[]}');
  });
  await new Promise<void>((resolve) => foreign.listen(0, '127.0.0.1', resolve));
  foreignOrigin = `http://127.0.0.1:${(foreign.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => foreign.close(resolve));
  await sb.close();
});
afterEach(() => {
  sb.admin.resetFaults();
  sb.admin.setFaults({ export: { durationMs: 0 } });
  sb.admin.clearStorageRequests();
  foreignHits.length = 0;
});

async function completedManifest(types: string[] = []): Promise<ExportManifest> {
  const { statusUrl } = await bulk.kickOff(conn, { level: 'System', types });
  for (let polls = 0; polls < 50; polls++) {
    const s = await bulk.status(conn, statusUrl);
    if (s.state === 'complete') return s.manifest;
    if (s.state !== 'in-progress') throw new Error(`status: ${JSON.stringify(s)}`);
    await sleep(50);
  }
  throw new Error('export not complete after 50 polls');
}

async function readAll(url: string, requiresAccessToken: boolean, storageOrigins: string[] = []): Promise<Array<Record<string, unknown>>> {
  const file = await bulk.openFile(conn, { url, requiresAccessToken }, { storageOrigins });
  const out: Array<Record<string, unknown>> = [];
  for await (const line of file.lines) {
    const value = parseObjectLine(line.text);
    if (value) out.push(value);
  }
  return out;
}

async function refusal(p: Promise<unknown>): Promise<{ code?: string; retryable?: boolean; message: string }> {
  try {
    await p;
  } catch (err) {
    return err as { code?: string; retryable?: boolean; message: string };
  }
  throw new Error('expected a refusal, the call succeeded');
}

describe('Bulk Data client (kick-off, status, manifest, files, cancel)', () => {
  test('a system export end to end: every resource of the requested types read from the files', async () => {
    const manifest = await completedManifest(['Patient', 'Observation']);
    expect(manifest.requiresAccessToken).toBe(true);
    expect(new Set(manifest.output.map((f) => f.type))).toEqual(new Set(['Patient', 'Observation']));
    for (const type of ['Patient', 'Observation'] as const) {
      const read = [];
      for (const f of manifest.output.filter((o) => o.type === type)) read.push(...(await readAll(f.url, manifest.requiresAccessToken)));
      expect(read.map((r) => r.id).sort()).toEqual(sb.admin.getResources(type).map((r) => r.id).sort());
    }
    const sandboxJob = sb.admin.listExportJobs().at(-1)!;
    expect(manifest.transactionTime).toBe(sandboxJob.transactionTime);
    expect(new URL(sandboxJob.request).searchParams.get('_type')).toBe('Patient,Observation');
  });

  test('cancel: 202, and the status URL answers 404 afterwards (the export is gone)', async () => {
    sb.admin.setFaults({ export: { neverFinish: true } });
    const { statusUrl } = await bulk.kickOff(conn, { level: 'System', types: ['Patient'] });
    expect(await bulk.status(conn, statusUrl)).toMatchObject({ state: 'in-progress' });
    expect(await bulk.cancel(conn, statusUrl)).toEqual({ status: 202 });
    expect(await bulk.status(conn, statusUrl)).toMatchObject({ state: 'failed', httpStatus: 404 });
  });

  test('a kick-off naming a type the server does not have says which type to remove', async () => {
    const e = await refusal(bulk.kickOff(conn, { level: 'System', types: ['Patient', 'Basic'] }));
    expect(e).toMatchObject({ retryable: false });
    expect(e.message).toMatch(/because of resource type Basic: .* Remove Basic from resourceTypes/);
  });
});

describe('URLs from the EHR are followed only where they may lead', () => {
  test('a status URL (Content-Location) on another host is refused, naming the host, and never polled', async () => {
    sb.admin.setFaults({ export: { statusUrlOrigin: foreignOrigin } });
    const e = await refusal(bulk.kickOff(conn, { level: 'System', types: ['Patient'] }));
    expect(e).toMatchObject({ code: 'FHIR_URL_REFUSED', retryable: false });
    expect(e.message).toContain(`host ${new URL(foreignOrigin).host}`);
    expect(e.message).toContain('export status URL');
    // A recorded foreign status URL is refused as well, for polls and for cancel.
    const url = `${foreignOrigin}/fhir/r4/bulkstatus/x`;
    await expect(bulk.status(conn, url)).rejects.toMatchObject({ code: 'FHIR_URL_REFUSED' });
    await expect(bulk.cancel(conn, url)).rejects.toMatchObject({ code: 'FHIR_URL_REFUSED' });
    expect(foreignHits).toEqual([]);
  });

  test('files on a storage host that is not configured are refused before any request; configured, they are read without the token', async () => {
    sb.admin.setFaults({ export: { fileOrigin: 'storage', requiresAccessToken: true } });
    const manifest = await completedManifest(['Patient']);
    const url = manifest.output[0]!.url;
    const storage = sb.admin.storageOrigin()!;
    expect(url.startsWith(storage)).toBe(true);
    const e = await refusal(bulk.openFile(conn, { url, requiresAccessToken: true }));
    expect(e).toMatchObject({ code: 'FHIR_URL_REFUSED', retryable: false });
    expect(e.message).toContain(`host ${new URL(storage).host}`);
    expect(e.message).toContain('exportStorageOrigins');
    expect(sb.admin.storageRequests()).toEqual([]);

    const rows = await readAll(url, true, [storage]);
    expect(rows.length).toBe(manifest.output[0]!.count);
    // requiresAccessToken: true, yet the storage origin never gets the token (it is not the FHIR server).
    expect(sb.admin.storageRequests().map((r) => [r.status, r.hadAuthorization])).toEqual([[200, false]]);
  });

  test('a same-origin file redirecting to an unconfigured host is refused at the redirect; configured, followed without the token', async () => {
    sb.admin.setFaults({ export: { fileOrigin: 'redirect' } });
    const manifest = await completedManifest(['Patient']);
    const url = manifest.output[0]!.url;
    expect(url.startsWith(sb.url)).toBe(true);
    const e = await refusal(bulk.openFile(conn, { url, requiresAccessToken: true }));
    expect(e).toMatchObject({ code: 'FHIR_URL_REFUSED' });
    expect(e.message).toContain('file redirect');
    expect(sb.admin.storageRequests()).toEqual([]);

    const rows = await readAll(url, true, [sb.admin.storageOrigin()!]);
    expect(rows.length).toBe(manifest.output[0]!.count);
    expect(sb.admin.storageRequests().map((r) => r.hadAuthorization)).toEqual([false]);
  });

  test('a search next link on another host is refused, naming the host, and never requested', async () => {
    sb.admin.setFaults({ nextLinkOrigin: foreignOrigin });
    const first = await fhir.searchPage(conn, 'Patient', { _count: 1 });
    expect(first.resources).toHaveLength(1);
    expect(first.next?.startsWith(foreignOrigin)).toBe(true);
    const e = await refusal(fhir.searchPage(conn, first.next!));
    expect(e).toMatchObject({ code: 'FHIR_URL_REFUSED', retryable: false });
    expect(e.message).toContain(`search next link on host ${new URL(foreignOrigin).host}`);
    expect(foreignHits).toEqual([]);
  });

  test('next links on the FHIR server are followed to the last page', async () => {
    let page = await fhir.searchPage(conn, 'Patient', { _count: 1 });
    const ids = page.resources.map((r) => r.id);
    while (page.next) {
      page = await fhir.searchPage(conn, page.next);
      ids.push(...page.resources.map((r) => r.id));
    }
    expect(ids.sort()).toEqual(sb.admin.listPatients().map((p) => p.id).sort());
  });

  test('an absolute URL on another host is never read, whatever the method', async () => {
    await expect(fhir.getJson(conn, `${foreignOrigin}/fhir/r4/Patient`)).rejects.toMatchObject({ code: 'FHIR_URL_REFUSED' });
    await expect(fhir.openStream(conn, `${foreignOrigin}/file.ndjson`)).rejects.toMatchObject({ code: 'FHIR_URL_REFUSED' });
    expect(foreignHits).toEqual([]);
  });
});
