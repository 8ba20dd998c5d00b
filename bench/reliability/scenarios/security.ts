/**
 * security: after a full run with the worker and the API logging at debug level (LOG_LEVEL=debug,
 * DEBUG=eclinicalworks:*, the worker's Temporal SDK and core logs at DEBUG) into files — a patient connected through
 * SMART, an enhanced sync, the access token expired so the worker refreshes it (rotation), a Patient bulk export,
 * capabilities and stored-resource reads, a backend-services connection and a System export — checks that:
 *  1-2. no workflow history of the namespace (payloads decoded to text, memos, search attributes) holds any access
 *       or refresh token the EHR issued, nor the patient's content (names, birth date, identifiers, free text);
 *  3-4. neither do the worker's and the API's logs;
 *  5.   no raw database document holds a token (they are sealed);
 *  6.   every sealed secret opens with the key, and not with a wrong key or another record's context;
 *  7.   every authenticated route refuses a request without the API key, with a wrong one and with a wrong bearer
 *       (401 with a message), and these refused requests change nothing;
 *  8.   no GET answer of the API shows a secret.
 * The secrets looked for: every access and refresh token and authorization code the EHR issued, the backend
 * connection's private key, the client secret, the API key and the encryption key (each whole and its first 24
 * characters). The content: the connected patient's resources, the System export's types of every patient, names.
 * Positive controls make the scans meaningful: the stored tokens (decrypted with the key) are among those recorded,
 * the history text holds a decoded payload (the sync input), the logs hold debug lines, and the probes are found in the database.
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import got from 'got';
import * as jose from 'jose';
import type { Scenario, ScenarioResult, SuiteOptions } from '../types';
import { routesFromOpenApi } from '../badInputGen';
import { hashDb, seedRun, startRelStack } from '../securityStack';
import { checkSealedConnections, contentProbes, findLeaks, needlesForSecrets, rawDatabaseText, scanHistories } from '../securityHelpers';
import { RESOURCE_TYPES } from '../../../src/sandbox';

interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

async function run(opts: SuiteOptions): Promise<ScenarioResult> {
  const t0 = Date.now();
  const stack = await startRelStack({ label: 'security', workDir: opts.workDir, logLevel: 'debug', log: opts.log, sandboxPatients: 3 });
  const checks: Check[] = [];
  try {
    const data = await seedRun(stack, { expireTokensBeforeExport: true, log: opts.log });
    const api = got.extend({ prefixUrl: stack.apiUrl, headers: { 'x-api-key': stack.apiKey }, throwHttpErrors: false, retry: { limit: 0 } });
    // More of the API at work (their logs are scanned too): capabilities (a workflow), stored resources, budget.
    const caps = await api.get(`api/ehr/eclinicalworks/capabilities?connectionId=${data.connectionId}`);
    const stored = await api.get(`api/ehr/eclinicalworks/resources/Communication?connectionId=${data.connectionId}`);
    await api.get('api/ehr/eclinicalworks/rate-limit');
    opts.log(`capabilities ${caps.statusCode}, stored Communications ${stored.statusCode}`);

    // A SMART Backend Services connection (its private key is sealed too) and a System export with it: more tokens
    // (client_credentials), the key's material and every patient's content go through the service.
    const { publicKey, privateKey } = await jose.generateKeyPair('ES384', { extractable: true });
    const clientId = 'security-backend';
    stack.sandbox.admin.registerClient({ clientId, jwks: { keys: [{ ...(await jose.exportJWK(publicKey)), kid: 'k1', alg: 'ES384' } as { kty: string }] } });
    const pem = await jose.exportPKCS8(privateKey);
    const privateJwk = await jose.exportJWK(privateKey);
    const backend = await api.post('api/ehr/eclinicalworks/connections/backend', { json: { clientId, privateKey: pem, alg: 'ES384', kid: 'k1' } });
    const backendId = (JSON.parse(backend.body) as { data?: { connectionId: string } }).data?.connectionId;
    if (backend.statusCode !== 201 || !backendId) throw new Error(`backend connection answered ${backend.statusCode}: ${backend.body.slice(0, 300)}`);
    const sys = await api.post('api/ehr/eclinicalworks/bulk-export', { json: { connectionId: backendId, exportType: 'System', resourceTypes: ['Patient', 'Communication', 'Task', 'CarePlan'], options: { pollIntervalSeconds: 1 } } });
    const sysId = (JSON.parse(sys.body) as { data?: { id: string } }).data?.id;
    if (sys.statusCode !== 202 || !sysId) throw new Error(`System export answered ${sys.statusCode}: ${sys.body.slice(0, 300)}`);
    let sysStatus = '';
    for (const deadline = Date.now() + 180_000; Date.now() < deadline; await sleep(500)) {
      sysStatus = (JSON.parse((await api.get(`api/ehr/eclinicalworks/bulk-export/${sysId}`)).body) as { data?: { status: string } }).data?.status ?? '';
      if (sysStatus !== 'IN_PROGRESS') break;
    }
    if (sysStatus !== 'COMPLETED') throw new Error(`System export ${sysId} ended ${sysStatus || 'not in 180 s'}`);
    opts.log(`backend connection ${backendId}, System export ${sysId} completed`);
    const keySecrets = [...pem.split('\n').filter((l) => l.length >= 40 && !l.startsWith('-----')), String(privateJwk.d)];

    // 7. The API-key wall, on every authenticated route of the OpenAPI document, with real ids and valid bodies
    //    (so that without the wall each request would act).
    const doc = (await got(`${stack.apiUrl}/api/openapi.json`).json()) as Record<string, unknown>;
    const routes = routesFromOpenApi(doc).filter((r) => r.authenticated);
    const before = await hashDb(stack.db);
    const wallFailures: string[] = [];
    let wallRequests = 0;
    for (const r of routes) {
      const path = r.template.replace(/\{([^}]+)\}/g, (_m, p: string) =>
        p === 'provider' ? 'eclinicalworks' : p === 'connectionId' ? data.connectionId : p === 'resourceType' ? 'Communication' : p === 'jobId' ? (r.template.includes('bulk-export') ? data.exportJobId : data.syncJobId) : 'x',
      );
      const query = r.query.filter((q) => q.required).map((q) => `${q.name}=${q.name === 'connectionId' ? data.connectionId : 'x'}`);
      const url = `${stack.apiUrl}${path}${query.length ? `?${query.join('&')}` : ''}`;
      const body = r.body ? { connectionId: data.connectionId, ...(r.template.endsWith('bulk-export') ? { exportType: 'Patient' } : {}) } : undefined;
      for (const [label, headers] of [
        ['no key', {}],
        ['wrong key', { 'x-api-key': `${stack.apiKey.slice(0, -4)}0000` }],
        ['wrong bearer', { authorization: 'Bearer not-the-key-0123456789' }],
      ] as const) {
        wallRequests++;
        const res = await got(url, { method: r.method as 'GET', headers, ...(body ? { json: body } : {}), throwHttpErrors: false, retry: { limit: 0 } });
        let message = '';
        try {
          message = String((JSON.parse(res.body) as { error?: { message?: string } }).error?.message ?? '');
        } catch {
          /* reported below */
        }
        if (res.statusCode !== 401 || !message) wallFailures.push(`${r.method} ${r.template} (${label}) → ${res.statusCode}`);
      }
    }
    const after = await hashDb(stack.db);
    const keyWorks = (await api.get('api/ehr/providers')).statusCode === 200;
    if (!keyWorks) wallFailures.push('the right key is refused too (the check proves nothing)');
    if (after.digest !== before.digest) wallFailures.push('the database changed');
    checks.push({ name: 'auth wall', ok: wallFailures.length === 0, detail: `${routes.length} routes × 3 = ${wallRequests} requests → 401${wallFailures.length ? `; FAILED: ${wallFailures.slice(0, 5).join(', ')}` : ''}` });

    // The tokens: every one the EHR issued during the run; the stored ones must be among them.
    const issued = [...stack.issuedTokens.access, ...stack.issuedTokens.refresh];
    // Also the other secrets of the run: authorization codes, the private key, the client secret, the API key and
    // the encryption key.
    const otherSecrets = [...stack.issuedTokens.codes, ...keySecrets, stack.clientSecret, stack.apiKey, stack.encryptionKey.toString('base64')];
    const needles = needlesForSecrets([...issued, ...otherSecrets]);
    const sealed = await checkSealedConnections(stack.db, stack.encryptionKey);
    // What the key opens: tokens the EHR issued, and the private key (PEM, as sent, or its JWK).
    const storedKnown = sealed.openedWithKey.filter((t) => issued.includes(t) || t === pem || t.includes(String(privateJwk.d))).length;

    // The content: the connected patient's resources as the EHR serves them, the System export's types of every
    // patient, and every patient's name.
    const resources = [
      ...RESOURCE_TYPES.flatMap((t) => stack.sandbox.admin.getResources(t, { patient: data.patientId })),
      ...(['Patient', 'Communication', 'Task', 'CarePlan'] as const).flatMap((t) => stack.sandbox.admin.getResources(t)),
    ];
    const probes = [...new Set([...contentProbes(resources), ...stack.sandbox.admin.listPatients().map((p) => p.name)])];
    const raw = await rawDatabaseText(stack.db);
    const probesInDb = probes.filter((p) => raw.text.includes(p)).length;

    // 8. The API's answers: every GET route of the document, with the key and real ids, shows no secret.
    const answers: string[] = [];
    for (const r of routes.concat(routesFromOpenApi(doc).filter((x) => !x.authenticated)).filter((x) => x.method === 'GET')) {
      for (const conn of [data.connectionId, backendId]) {
        const path = r.template.replace(/\{([^}]+)\}/g, (_m, p: string) =>
          p === 'provider' ? 'eclinicalworks' : p === 'connectionId' ? conn : p === 'resourceType' ? 'Communication' : p === 'jobId' ? (r.template.includes('bulk-export') ? (conn === backendId ? sysId : data.exportJobId) : data.syncJobId) : 'x',
        );
        const query = r.query.filter((q) => q.required).map((q) => `${q.name}=${q.name === 'connectionId' ? conn : 'x'}`);
        const res = await api.get(`${path.slice(1)}${query.length ? `?${query.join('&')}` : ''}`);
        answers.push(`${res.statusCode} ${res.body}`);
      }
    }
    const answerText = answers.join('\n');
    const answerLeaks = findLeaks(answerText, needlesForSecrets([...issued, ...keySecrets, stack.clientSecret, stack.encryptionKey.toString('base64')]));
    const answersOk = answers.filter((a) => a.startsWith('200 ')).length;
    checks.push({ name: 'API answers: no secret', ok: answerLeaks.length === 0 && answersOk >= answers.length / 2, detail: `${answers.length} GET answers (${answersOk} × 200, ${(answerText.length / 1024).toFixed(0)} KB)${answerLeaks.length ? `; LEAKS ${answerLeaks.join(', ')}` : ''}` });

    // 1-2. Workflow histories.
    const hist = await scanHistories(stack.client);
    const histTokenLeaks = findLeaks(hist.text, needles);
    const histContentLeaks = findLeaks(hist.text, probes);
    // Control: the sync's input is only in a payload's bytes (not in ids or names), so the decoding works.
    const histControl = hist.text.includes('"includeStandard":true');
    checks.push({
      name: 'history: no secret',
      ok: histTokenLeaks.length === 0 && histControl && hist.workflows >= 3,
      detail: `${hist.workflows} histories, ${hist.events} events, ${(hist.payloadBytes / 1024).toFixed(0)} KB decoded; ${needles.length} secret needles${histTokenLeaks.length ? `; LEAKS ${histTokenLeaks.join(', ')}` : ''}${histControl ? '' : '; control failed (no decoded payload seen)'}`,
    });
    checks.push({ name: 'history: no content', ok: histContentLeaks.length === 0, detail: `${probes.length} probes${histContentLeaks.length ? `; LEAKS ${histContentLeaks.length} (e.g. ${histContentLeaks.slice(0, 3).join(', ')})` : ''}` });

    // 3-4. Logs (the processes stopped first, so everything is flushed).
    await stack.stopServices();
    const logText = [readFileSync(stack.logFiles.worker, 'utf8'), readFileSync(stack.logFiles.api, 'utf8')].join('\n');
    const logLines = logText.split('\n').filter(Boolean).length;
    const debugLines = logText.split("\n").filter((l) => /eclinicalworks:|"level":20|\[DEBUG\]/.test(l)).length;
    const logTokenLeaks = findLeaks(logText, needles);
    const logContentLeaks = findLeaks(logText, probes);
    checks.push({
      name: 'logs: no secret',
      ok: logTokenLeaks.length === 0 && debugLines > 0,
      detail: `${logLines} log lines (${debugLines} debug)${logTokenLeaks.length ? `; LEAKS ${logTokenLeaks.join(', ')}` : ''}${debugLines ? '' : '; control failed (no debug line)'}`,
    });
    checks.push({ name: 'logs: no content', ok: logContentLeaks.length === 0, detail: `${probes.length} probes${logContentLeaks.length ? `; LEAKS ${logContentLeaks.length} (e.g. ${logContentLeaks.slice(0, 3).join(', ')})` : ''}` });

    // 5-6. At rest.
    const rawTokenLeaks = findLeaks(raw.text, needles);
    checks.push({ name: 'at rest: no secret in raw documents', ok: rawTokenLeaks.length === 0, detail: `${raw.documents} documents${rawTokenLeaks.length ? `; LEAKS ${rawTokenLeaks.join(', ')}` : ''}` });
    checks.push({
      name: 'at rest: sealed',
      ok: sealed.problems.length === 0 && sealed.sealedFields >= 4 && storedKnown === sealed.openedWithKey.length,
      detail: `${sealed.sealedFields} sealed fields open with the key only; ${storedKnown}/${sealed.openedWithKey.length} stored secrets among the ${issued.length} tokens issued and the private key${sealed.problems.length ? `; ${sealed.problems.slice(0, 3).join(', ')}` : ''}`,
    });

    for (const c of checks) opts.log(`${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.detail}`);
    const leaks = histTokenLeaks.length + histContentLeaks.length + logTokenLeaks.length + logContentLeaks.length + rawTokenLeaks.length;
    return {
      scenario: 'security: tokens and patient data absent from histories, logs and raw documents; API-key wall',
      runs: checks.length,
      passed: checks.filter((c) => c.ok).length,
      expected: '0 leaks',
      found: `${leaks} leaks`,
      notes: [
        `secrets looked for: ${stack.issuedTokens.access.size} access + ${stack.issuedTokens.refresh.size} refresh tokens, ${stack.issuedTokens.codes.size} authorization codes, ${keySecrets.length} private-key fragments, the client secret, the API key, the encryption key (${needles.length} needles with 24-character prefixes)`,
        `probes ${probes.length} (${probesInDb} found in the db)`,
        `sync ${data.syncTotal}, export ${data.exportResources} resources`,
        ...checks.map((c) => `${c.ok ? '' : 'FAILED '}${c.name}: ${c.detail}`),
        `${((Date.now() - t0) / 1000).toFixed(0)} s`,
      ].join('; '),
    };
  } finally {
    await stack.close();
  }
}

export const scenarios: Scenario[] = [{ id: 'security', run }];
