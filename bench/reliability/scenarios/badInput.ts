/**
 * bad-input: after a real run (a patient connected through SMART, an enhanced sync and a bulk export finished), at
 * least 1,000 seeded malformed or hostile requests to every route of the API's OpenAPI document. Each must get a
 * 4xx in the error envelope with a message within 15 s (no 5xx, no hang); afterwards every collection hashes as
 * before, no workflow was started, and the API and the worker are still running with no unhandled error logged.
 */
import { readFileSync } from 'node:fs';
import got from 'got';
import type { Scenario, ScenarioResult, SuiteOptions } from '../types';
import { describeFailure, findUndocumentedRoutes, generateHostile, judge, routesFromOpenApi, sendAll } from '../badInputGen';
import { hashDb, listWorkflows, seedRun, startRelStack } from '../securityStack';

async function run(opts: SuiteOptions): Promise<ScenarioResult> {
  const seed = (opts.seed ^ 0xbad1) >>> 0;
  const t0 = Date.now();
  const stack = await startRelStack({ label: 'badinput', workDir: opts.workDir, logLevel: 'info', log: opts.log, sandboxPatients: 3 });
  try {
    const data = await seedRun(stack, { log: opts.log });
    const doc = (await got(`${stack.apiUrl}/api/openapi.json`).json()) as Record<string, unknown>;
    const fx = { apiKey: stack.apiKey, provider: 'eclinicalworks', connectionId: data.connectionId, syncJobId: data.syncJobId, exportJobId: data.exportJobId };
    const documented = routesFromOpenApi(doc);
    // Routes the app registers that the document does not list are fed too (with the generic defects).
    const undocumented = await findUndocumentedRoutes(stack.apiUrl, documented, fx);
    const routes = [...documented, ...undocumented];
    // 1,000 per route (50 with --quick): the barrage is cheap (a few ms per request), the stack set-up is not.
    const perRoute = opts.quick ? 50 : 1000;
    const requests = generateHostile(routes, fx, perRoute, seed);
    const before = await hashDb(stack.db);
    const workflowsBefore = (await listWorkflows(stack.client)).length;
    opts.log(`${routes.length} routes, ${requests.length} requests (seed ${seed}); db ${Object.values(before.collections).reduce((n, c) => n + c.count, 0)} documents in ${Object.keys(before.collections).length} collections, ${workflowsBefore} workflows`);
    const t1 = Date.now();
    const outcomes = await sendAll(stack.apiUrl, requests, 4, 15_000);
    const barrageMs = Date.now() - t1;
    const after = await hashDb(stack.db);
    const workflowsAfter = (await listWorkflows(stack.client)).length;
    const alive = stack.alive();
    const health = await got(`${stack.apiUrl}/health`, { throwHttpErrors: false, retry: { limit: 0 }, timeout: { request: 10_000 } }).then((r) => r.statusCode, (err: Error) => err.message);
    const apiLog = readFileSync(stack.logFiles.api, 'utf8');
    const unhandled = apiLog.split('\n').filter((l) => l.includes('"level":50') || l.includes('unhandled error')).length;

    const byStatus: Record<string, number> = {};
    const byKind: Record<string, { n: number; failed: number }> = {};
    const failures: string[] = [];
    let passed = 0;
    for (const o of outcomes) {
      byStatus[o.status ?? 'none'] = (byStatus[o.status ?? 'none'] ?? 0) + 1;
      const k = (byKind[o.req.kind] ??= { n: 0, failed: 0 });
      k.n++;
      const why = judge(o);
      if (why) {
        k.failed++;
        failures.push(describeFailure(o, why));
      } else passed++;
    }
    const changed = Object.keys({ ...before.collections, ...after.collections }).filter((c) => before.collections[c]?.sha256 !== after.collections[c]?.sha256);
    const global: string[] = [];
    if (changed.length) global.push(`DB CHANGED: ${changed.join(', ')}`);
    if (workflowsAfter !== workflowsBefore) global.push(`workflows ${workflowsBefore} → ${workflowsAfter}`);
    if (!alive.api || !alive.worker) global.push(`process died: api ${alive.api}, worker ${alive.worker}`);
    if (health !== 200) global.push(`GET /health after the barrage: ${health}`);
    if (unhandled) global.push(`${unhandled} unhandled-error log lines`);
    // A global failure (the database changed, a workflow started, a process died) fails the whole barrage.
    const passedRuns = global.length ? 0 : passed;
    const slowest = Math.max(...outcomes.map((o) => o.ms));
    for (const f of failures.slice(0, 20)) opts.log(`FAIL ${f}`);
    const notes = [
      `seed ${seed}`,
      `${routes.length} routes (${undocumented.length} not in the OpenAPI document${undocumented.length ? `: ${undocumented.map((r) => `${r.method} ${r.template}`).join(', ')}` : ''}) × ${perRoute}`,
      `status ${Object.entries(byStatus)
        .sort()
        .map(([s, n]) => `${s}:${n}`)
        .join(' ')}`,
      `kinds ${Object.entries(byKind)
        .map(([k, v]) => `${k}:${v.n}${v.failed ? `(${v.failed} failed)` : ''}`)
        .join(' ')}`,
      `db ${before.digest.slice(0, 12)} → ${after.digest.slice(0, 12)} (${Object.keys(after.collections).length} collections, ${Object.values(after.collections).reduce((n, c) => n + c.count, 0)} docs)`,
      `workflows ${workflowsBefore} → ${workflowsAfter}`,
      `slowest ${slowest} ms, barrage ${(barrageMs / 1000).toFixed(1)} s, total ${((Date.now() - t0) / 1000).toFixed(0)} s`,
      ...global,
      ...(failures.length ? [`first failures: ${failures.slice(0, 3).join(' ; ')}`] : []),
    ];
    return {
      scenario: 'bad-input: hostile requests to every route (4xx + message, db unchanged)',
      runs: outcomes.length,
      passed: passedRuns,
      expected: `${outcomes.length} × 4xx; db ${before.digest.slice(0, 12)}`,
      found: `${passed} × 4xx; db ${after.digest.slice(0, 12)}`,
      notes: notes.join('; '),
    };
  } finally {
    await stack.close();
  }
}

export const scenarios: Scenario[] = [{ id: 'bad-input', run }];
