/**
 * SMART authorization endpoint with an HTML patient picker that can be driven without a browser:
 * the page holds `<form method="post" action="/oauth/authorize/decide">` with a hidden `tx`, one radio
 * `patient` per patient, and submit buttons `decision=approve|deny`.
 */
import express, { type Request, type Response, type Router } from 'express';
import { fhirBase, type SandboxContext } from '../context';
import type { ClientRegistration } from '../types';
import { isKnownScope, parseResourceScope, readPartOf, splitScopes } from './scopes';
import { randomToken } from './tokens';

interface Transaction {
  clientId: string;
  redirectUri: string;
  scopes: string[];
  state: string;
  codeChallenge: string;
  expiresAt: number;
}

const TX_TTL_MS = 10 * 60_000;
const MAX_PICKER_PATIENTS = 200;
const PKCE_CHALLENGE = /^[A-Za-z0-9_-]{43,128}$/;

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch] as string);
}

function redirectWith(res: Response, redirectUri: string, params: Record<string, string | undefined>): void {
  const url = new URL(redirectUri);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, v);
  res.redirect(302, url.toString());
}

function badRequest(req: Request, res: Response, error: string, description: string): void {
  res.status(400);
  if (req.accepts(['json', 'html']) === 'html') {
    res.type('html').send(`<!doctype html><html><body><h1>Authorization error</h1><p id="error">${escapeHtml(error)}</p><p>${escapeHtml(description)}</p></body></html>`);
  } else {
    res.json({ error, error_description: description });
  }
}

/**
 * Scopes the authorization server grants a client: through the code flow never system/*, through client
 * credentials only system/*; write access is cut down to its read part (read-only server, see readPartOf).
 */
export function grantableScopes(client: ClientRegistration, requested: string[], allowSystem: boolean): string[] {
  const granted = new Set<string>();
  for (const asked of requested) {
    if (!isKnownScope(asked)) continue;
    // A registration limits what was asked for (as registered, e.g. system/*.*), before it is cut down.
    if (client.scopes !== undefined && !client.scopes.includes(asked)) continue;
    const s = readPartOf(asked);
    if (s === null) continue;
    const grant = parseResourceScope(s);
    if (grant && (grant.context === 'system') !== allowSystem) continue;
    if (!grant && allowSystem) continue;
    granted.add(s);
  }
  return [...granted];
}

export function authorizeRouter(ctx: SandboxContext): Router {
  const router = express.Router();
  const transactions = new Map<string, Transaction>();

  const start = (req: Request, res: Response, p: Record<string, string | undefined>): void => {
    const client = p.client_id ? ctx.clients.get(p.client_id) : undefined;
    if (!client) return badRequest(req, res, 'invalid_client', 'Unknown or missing client_id');
    const redirectUri = p.redirect_uri;
    if (!redirectUri || !(client.redirectUris ?? []).includes(redirectUri)) {
      return badRequest(req, res, 'invalid_request', 'redirect_uri is missing or not registered for this client');
    }
    const state = p.state;
    const fail = (error: string, description: string): void =>
      redirectWith(res, redirectUri, { error, error_description: description, state });
    if (p.response_type !== 'code') return fail('unsupported_response_type', 'response_type must be code');
    if (!state) return fail('invalid_request', 'state is required');
    if (!p.code_challenge || !PKCE_CHALLENGE.test(p.code_challenge)) {
      return fail('invalid_request', 'PKCE code_challenge is required');
    }
    if (p.code_challenge_method !== 'S256') return fail('invalid_request', 'code_challenge_method must be S256');
    const base = fhirBase(ctx, req);
    if (!p.aud || p.aud.replace(/\/+$/, '') !== base) return fail('invalid_request', `aud must be the FHIR base URL ${base}`);
    const requested = splitScopes(p.scope);
    if (requested.length === 0) return fail('invalid_scope', 'scope is required');
    const scopes = grantableScopes(client, requested, false);
    if (!scopes.some((s) => parseResourceScope(s) !== null)) {
      return fail('invalid_scope', 'none of the requested resource scopes can be granted');
    }
    const tx = randomToken(16);
    transactions.set(tx, {
      clientId: client.clientId,
      redirectUri,
      scopes,
      state,
      codeChallenge: p.code_challenge,
      expiresAt: Date.now() + TX_TTL_MS,
    });
    const patients = ctx.store.livePatients().slice(0, MAX_PICKER_PATIENTS).map((i) => ctx.store.patientSummary(i));
    const rows = patients
      .map(
        (pt, i) =>
          `<li><label><input type="radio" name="patient" value="${escapeHtml(pt.id)}"${i === 0 ? ' checked' : ''}> ` +
          `${escapeHtml(pt.name)} (${escapeHtml(pt.gender)}, born ${escapeHtml(pt.birthDate)}) <code>${escapeHtml(pt.id)}</code></label></li>`,
      )
      .join('\n');
    res
      .status(200)
      .type('html')
      .setHeader('Cache-Control', 'no-store')
      .send(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>eClinicalWorks sandbox - authorize ${escapeHtml(client.clientId)}</title></head>
<body>
<h1>Authorize ${escapeHtml(client.clientId)}</h1>
<p>Requested access: <code>${escapeHtml(scopes.join(' '))}</code></p>
<form method="post" action="${escapeHtml(ctx.mount.root)}/oauth/authorize/decide">
<input type="hidden" name="tx" value="${escapeHtml(tx)}">
<fieldset><legend>Select a patient</legend>
<ul>
${rows}
</ul>
</fieldset>
<button type="submit" name="decision" value="approve">Approve</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>
</body></html>`);
  };

  router.get('/oauth/authorize', (req, res) => start(req, res, queryRecord(req)));
  router.post('/oauth/authorize', express.urlencoded({ extended: false }), (req, res) =>
    start(req, res, { ...queryRecord(req), ...bodyRecord(req) }),
  );

  router.post('/oauth/authorize/decide', express.urlencoded({ extended: false }), (req, res) => {
    const body = bodyRecord(req);
    const txId = body.tx ?? '';
    const tx = transactions.get(txId);
    if (!tx || tx.expiresAt < Date.now()) {
      transactions.delete(txId);
      return badRequest(req, res, 'invalid_request', 'Unknown or expired authorization transaction');
    }
    transactions.delete(txId);
    if (body.decision !== 'approve') {
      return redirectWith(res, tx.redirectUri, { error: 'access_denied', error_description: 'The user denied access', state: tx.state });
    }
    const patientId = body.patient ?? '';
    if (ctx.store.patientIndex(patientId) < 0 || ctx.store.get('Patient', patientId) === 'deleted') {
      return redirectWith(res, tx.redirectUri, { error: 'invalid_request', error_description: 'Unknown patient', state: tx.state });
    }
    const code = ctx.tokens.createCode({
      clientId: tx.clientId,
      redirectUri: tx.redirectUri,
      scopes: tx.scopes,
      patient: patientId,
      codeChallenge: tx.codeChallenge,
      ttlSeconds: ctx.options.authCodeTtlSeconds,
    });
    redirectWith(res, tx.redirectUri, { code, state: tx.state });
  });

  return router;
}

function queryRecord(req: Request): Record<string, string | undefined> {
  const url = new URL(req.originalUrl, 'http://x');
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of url.searchParams) if (out[k] === undefined) out[k] = v;
  return out;
}

export function bodyRecord(req: Request): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  const body: unknown = req.body;
  if (body && typeof body === 'object') {
    for (const [k, v] of Object.entries(body as Record<string, unknown>)) {
      if (typeof v === 'string') out[k] = v;
      else if (Array.isArray(v) && typeof v[0] === 'string') out[k] = v[0];
    }
  }
  return out;
}
