import got, { type Got } from 'got';
import { z } from 'zod';

/**
 * The first-run demo (`npm start` runs it): plays a user and a calling service against the running stack.
 * Connects a sandbox patient through the SMART flow (driving the sandbox's patient picker like a browser would),
 * asks for the server's capabilities, runs a bulk export (when the API offers it) and an enhanced sync with live
 * progress, then says where to look. It uses only the public HTTP API, like any client would.
 */
const Env = z.object({
  API_HOST: z.string().default('127.0.0.1'),
  API_PORT: z.coerce.number().int().default(3000),
  API_KEY: z.string().min(16, 'API_KEY is required (scripts/start.sh sets it)'),
  TEMPORAL_UI_URL: z.string().default('http://127.0.0.1:8233'),
  DEMO_PATIENT: z.string().optional(),
});

interface Envelope<T> {
  success: boolean;
  data?: T;
  error?: { code: string; message: string };
}

const tty = process.stdout.isTTY;
const say = (line = '') => process.stdout.write(`${line}\n`);

async function call<T>(api: Got, method: 'GET' | 'POST', path: string, json?: unknown): Promise<{ status: number; body: Envelope<T> }> {
  const res = await api(path, { method, json, throwHttpErrors: false });
  return { status: res.statusCode, body: JSON.parse(res.body) as Envelope<T> };
}

function must<T>(r: { status: number; body: Envelope<T> }, what: string): T {
  if (!r.body.success || r.body.data === undefined) throw new Error(`${what} failed (${r.status}): ${r.body.error?.message ?? 'no data'}`);
  return r.body.data;
}

/** One progress line per step: a bar, the count and the rate; redrawn in place on a terminal. */
function progress(label: string) {
  const started = Date.now();
  let last = '';
  return {
    update(done: number, total: number | undefined, note = '') {
      const secs = Math.max((Date.now() - started) / 1000, 0.001);
      const width = 28;
      const frac = total ? Math.min(done / total, 1) : 0;
      const bar = total ? '█'.repeat(Math.round(frac * width)).padEnd(width, '░') : '░'.repeat(width);
      const line = `${label.padEnd(16)} ${bar} ${String(done).padStart(6)}${total ? `/${total}` : ''} resources  ${(done / secs).toFixed(1)}/s ${note}`;
      if (tty) process.stdout.write(`\r${line.padEnd(last.length)}`);
      else if (line !== last) say(line);
      last = line;
    },
    end() {
      if (tty) process.stdout.write('\n');
    },
  };
}

/** The user's browser: open the authorize URL, pick a patient in the sandbox's picker, follow the redirect. */
async function authorizeAsUser(authorizeUrl: string, patient?: string): Promise<string> {
  const page = await got(authorizeUrl, { followRedirect: false });
  const tx = /name="tx" value="([^"]+)"/.exec(page.body)?.[1];
  const first = /type="radio" name="patient" value="([^"]+)"/.exec(page.body)?.[1];
  if (!tx || !first) throw new Error('The EHR did not show a patient picker.');
  const decided = await got.post(new URL('/oauth/authorize/decide', authorizeUrl).href, {
    form: { tx, patient: patient ?? first, decision: 'approve' },
    followRedirect: false,
  });
  const location = decided.headers.location;
  if (!location) throw new Error('The EHR did not redirect back.');
  return location;
}

async function main(): Promise<void> {
  const env = Env.parse(process.env);
  const apiUrl = `http://${env.API_HOST}:${env.API_PORT}`;
  const api = got.extend({ prefixUrl: apiUrl, headers: { 'x-api-key': env.API_KEY }, retry: { limit: 0 } });

  say('── ehr-sync demo ──────────────────────────────────────────────');
  say('1. Connecting a sandbox patient through SMART on FHIR (PKCE + state)…');
  const { authorizeUrl } = must(await call<{ authorizeUrl: string }>(api, 'POST', 'api/ehr/eclinicalworks/authorize', {}), 'Starting authorization');
  const callback = await authorizeAsUser(authorizeUrl, env.DEMO_PATIENT);
  const callbackRes = await got(callback, { throwHttpErrors: false });
  const connection = must({ status: callbackRes.statusCode, body: JSON.parse(callbackRes.body) as Envelope<{ connectionId: string; patientId: string; scopes: string[] }> }, 'The OAuth callback');
  say(`   connected: ${connection.connectionId} (patient ${connection.patientId}; scopes ${connection.scopes.join(' ')})`);

  say('2. Asking the FHIR server what it supports (capabilities workflow)…');
  const caps = must(await call<Record<string, unknown>>(api, 'GET', `api/ehr/eclinicalworks/capabilities?connectionId=${connection.connectionId}`), 'Capabilities');
  say(`   bulkExport=${caps.bulkExport} diagnosticReports=${caps.diagnosticReports} carePlans=${caps.carePlans} encounters=${caps.encounters} communications=${caps.communications} tasks=${caps.tasks} rateLimit="${caps.rateLimit}"`);

  say('3. Bulk export ($export) into MongoDB…');
  const exportStart = await call<{ id: string }>(api, 'POST', 'api/ehr/eclinicalworks/bulk-export', {
    connectionId: connection.connectionId,
    exportType: 'Patient',
    resourceTypes: ['Patient', 'Observation', 'Condition', 'DiagnosticReport', 'CarePlan', 'Encounter', 'Communication', 'Task'],
    options: { pollIntervalSeconds: 1 },
  });
  if (exportStart.status === 404 && exportStart.body.error?.code === 'NOT_FOUND') {
    say('   (this build has no bulk-export route yet; skipped)');
  } else {
    const job = must(exportStart, 'Starting the bulk export');
    const bar = progress('bulk export');
    for (;;) {
      const status = must(
        await call<{ status: string; progress?: { phase?: string; xProgress?: string; resources?: number; files?: { total: number; done: number } }; errorMessage?: string }>(api, 'GET', `api/ehr/eclinicalworks/bulk-export/${job.id}`),
        'Export status',
      );
      const p = status.progress;
      const files = p?.files ? `files ${p.files.done}/${p.files.total}` : '';
      bar.update(p?.resources ?? 0, undefined, [p?.phase, p?.xProgress, files].filter(Boolean).join(' · '));
      if (status.status !== 'IN_PROGRESS') {
        bar.end();
        say(`   export ${job.id}: ${status.status}${status.errorMessage ? ` — ${status.errorMessage}` : ''}`);
        break;
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  say('4. Enhanced sync (one resumable step per resource type)…');
  const started = must(await call<{ id: string }>(api, 'POST', 'api/ehr/eclinicalworks/enhanced-sync', { connectionId: connection.connectionId, includeStandard: true, includeEnhanced: true, since: '2000-01-01T00:00:00Z', waitMs: 0 }), 'Starting the sync');
  const bar = progress('enhanced sync');
  let final: { status: string; standardResources?: number; enhancedResources?: number; total?: number; errorMessage?: string; progress: { perType: Record<string, { fetched: number; done: boolean }> } };
  for (;;) {
    final = must(await call<typeof final>(api, 'GET', `api/ehr/eclinicalworks/enhanced-sync/${started.id}`), 'Sync status');
    const perType = Object.values(final.progress.perType);
    bar.update(perType.reduce((n, t) => n + t.fetched, 0), undefined, `${perType.filter((t) => t.done).length} types done`);
    if (final.status !== 'IN_PROGRESS') break;
    await new Promise((r) => setTimeout(r, 300));
  }
  bar.end();
  if (final.status !== 'COMPLETED') throw new Error(`The sync ended ${final.status}: ${final.errorMessage ?? ''}`);
  say(`   standardResources=${final.standardResources} enhancedResources=${final.enhancedResources} total=${final.total}`);

  say('');
  say('Where to look:');
  say(`  Temporal UI (workflows, history, retries): ${env.TEMPORAL_UI_URL}/namespaces/default/workflows`);
  say(`  Sync job:      curl -H "x-api-key: $API_KEY" ${apiUrl}/api/ehr/eclinicalworks/enhanced-sync/${started.id}`);
  say(`  Capabilities:  curl -H "x-api-key: $API_KEY" "${apiUrl}/api/ehr/eclinicalworks/capabilities?connectionId=${connection.connectionId}"`);
  say(`  Stored data:   curl -H "x-api-key: $API_KEY" "${apiUrl}/api/ehr/eclinicalworks/resources/Communication?connectionId=${connection.connectionId}&status=completed&sent=ge2024-01-01"`);
  say('  (API_KEY is in .data/local-secrets.env)');
}

main().catch((err) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
