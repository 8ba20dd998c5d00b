import got, { type Got } from 'got';
import { describeOAuthRefusal } from './oauthError';
import { Presets, SingleBar } from 'cli-progress';
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

/**
 * One progress bar per step (cli-progress redraws each in place on a terminal, and prints them every second when
 * the output is a file or a pipe). The bar counts the step's units (files, resource types); the payload carries
 * the resources stored so far and their rate.
 */
const BAR_OPTIONS = {
    format: '{step} {bar} {value}/{total} {unit} | {resources} resources | {rate}/s | {note}',
    barsize: 24,
    hideCursor: true,
    clearOnComplete: false,
    stopOnComplete: false,
    noTTYOutput: !tty,
    notTTYSchedule: 1000,
    etaBuffer: 5,
};

function progress(step: string, unit: string) {
  const started = Date.now();
  let bar: SingleBar | undefined;
  return {
    update(done: number, total: number, resources: number, note = '') {
      const secs = Math.max((Date.now() - started) / 1000, 0.001);
      const payload = { step: step.padEnd(14), unit, resources, rate: (resources / secs).toFixed(1), note };
      if (!bar) {
        bar = new SingleBar(BAR_OPTIONS, Presets.shades_classic);
        bar.start(Math.max(total, 1), done, payload);
      } else {
        bar.setTotal(Math.max(total, 1));
        bar.update(done, payload);
      }
    },
    end() {
      bar?.stop();
    },
  };
}

/** The user's browser: open the authorize URL, pick a patient in the sandbox's picker, follow the redirect. */
async function authorizeAsUser(authorizeUrl: string, patient?: string): Promise<string> {
  const page = await got(authorizeUrl, { followRedirect: false, throwHttpErrors: false });
  // A refusal (e.g. a redirect URI the server does not have) is shown with the server's error_description.
  if (page.statusCode >= 400) throw new Error(describeOAuthRefusal(page.statusCode, page.headers['content-type'], page.body));
  const tx = /name="tx" value="([^"]+)"/.exec(page.body)?.[1];
  const first = /type="radio" name="patient" value="([^"]+)"/.exec(page.body)?.[1];
  if (!tx || !first) throw new Error('The EHR did not show a patient picker.');
  const decided = await got.post(new URL('/oauth/authorize/decide', authorizeUrl).href, {
    form: { tx, patient: patient ?? first, decision: 'approve' },
    followRedirect: false,
    throwHttpErrors: false,
  });
  if (decided.statusCode >= 400) throw new Error(describeOAuthRefusal(decided.statusCode, decided.headers['content-type'], decided.body));
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
    const bar = progress('bulk export', 'files');
    for (;;) {
      const status = must(
        await call<{ status: string; progress?: { phase?: string; xProgress?: string; resources?: number; files?: { total: number; done: number } }; errorMessage?: string }>(api, 'GET', `api/ehr/eclinicalworks/bulk-export/${job.id}`),
        'Export status',
      );
      const p = status.progress;
      bar.update(p?.files?.done ?? 0, p?.files?.total ?? 0, p?.resources ?? 0, [p?.phase, p?.xProgress].filter(Boolean).join(' · '));
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
  const bar = progress('enhanced sync', 'types');
  let final: { status: string; standardResources?: number; enhancedResources?: number; total?: number; errorMessage?: string; progress: { perType: Record<string, { fetched: number; done: boolean }>; steps?: Record<string, string> } };
  for (;;) {
    final = must(await call<typeof final>(api, 'GET', `api/ehr/eclinicalworks/enhanced-sync/${started.id}`), 'Sync status');
    const perType = Object.values(final.progress.perType);
    const steps = Object.values(final.progress.steps ?? {});
    const typesTotal = Math.max(steps.length, perType.length);
    const running = steps.filter((s) => s === 'running').length;
    bar.update(perType.filter((t) => t.done).length, typesTotal, perType.reduce((n, t) => n + t.fetched, 0), running ? `${running} paging` : final.status);
    if (final.status !== 'IN_PROGRESS') break;
    await new Promise((r) => setTimeout(r, 300));
  }
  bar.end();
  if (final.status !== 'COMPLETED') throw new Error(`The sync ended ${final.status}: ${final.errorMessage ?? ''}`);
  say(`   standardResources=${final.standardResources} enhancedResources=${final.enhancedResources} total=${final.total}`);

  const stored = must(await call<{ counts: Record<string, number>; total: number }>(api, 'GET', `api/ehr/eclinicalworks/resources?connectionId=${connection.connectionId}`), 'Stored counts');
  say(`   stored in MongoDB: ${stored.total} resources (${Object.entries(stored.counts).map(([t, n]) => `${t} ${n}`).join(', ')})`);

  say('');
  say('Where to look:');
  say(`  Temporal UI (workflows, history, retries): ${env.TEMPORAL_UI_URL}/namespaces/default/workflows`);
  say(`  Sync job:      curl -H "x-api-key: $API_KEY" ${apiUrl}/api/ehr/eclinicalworks/enhanced-sync/${started.id}`);
  say(`  Capabilities:  curl -H "x-api-key: $API_KEY" "${apiUrl}/api/ehr/eclinicalworks/capabilities?connectionId=${connection.connectionId}"`);
  say(`  Counts stored: curl -H "x-api-key: $API_KEY" "${apiUrl}/api/ehr/eclinicalworks/resources?connectionId=${connection.connectionId}"`);
  say(`  Stored data:   curl -H "x-api-key: $API_KEY" "${apiUrl}/api/ehr/eclinicalworks/resources/Communication?connectionId=${connection.connectionId}&status=completed&sent=ge2024-01-01"`);
  say('  (API_KEY is in .data/local-secrets.env)');
}

main().catch((err) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
