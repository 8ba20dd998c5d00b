import got from 'got';
import type { ConnectionView } from '../../src/store/connections';
import type { TestStack } from './stack';

/**
 * Plays the user in the sandbox's patient picker without a browser: opens the authorize URL, picks a patient,
 * approves, and returns the redirect the EHR sends back (with code and state).
 */
export async function approveInSandbox(authorizeUrl: string, patientId?: string, decision: 'approve' | 'deny' = 'approve'): Promise<URL> {
  const page = await got(authorizeUrl, { followRedirect: false, throwHttpErrors: false });
  if (page.statusCode !== 200) throw new Error(`authorize page answered ${page.statusCode}: ${page.body.slice(0, 300)}`);
  const tx = /name="tx" value="([^"]+)"/.exec(page.body)?.[1];
  const patients = [...page.body.matchAll(/type="radio" name="patient" value="([^"]+)"/g)].map((m) => m[1] as string);
  if (!tx || patients.length === 0) throw new Error('the patient picker page has no transaction or no patients');
  const origin = new URL(authorizeUrl).origin;
  const decided = await got.post(`${origin}/oauth/authorize/decide`, {
    form: { tx, patient: patientId ?? patients[0], decision },
    followRedirect: false,
    throwHttpErrors: false,
  });
  if (decided.statusCode !== 302 || !decided.headers.location) throw new Error(`decide answered ${decided.statusCode}`);
  return new URL(decided.headers.location);
}

/** Delivers the EHR's redirect to the API's callback (the browser's last hop). */
export async function deliverCallback(stack: TestStack, redirect: URL) {
  // Through the test HTTP helper, so the callback's answer is checked against the OpenAPI document too.
  return stack.api.get<ConnectionView>(`api/ehr/callback${redirect.search}`);
}

export async function startAuthorization(stack: TestStack, body: Record<string, unknown> = {}) {
  const res = await stack.api.post<{ authorizeUrl: string; state: string }>('api/ehr/eclinicalworks/authorize', { json: body });
  const env = res.body;
  if (res.statusCode !== 201 || !env.data) throw new Error(`authorize answered ${res.statusCode}: ${JSON.stringify(env)}`);
  return env.data;
}

/** The whole SMART standalone patient launch through the API and the sandbox; returns the stored connection. */
export async function connectPatient(stack: TestStack, patientId?: string): Promise<ConnectionView> {
  const { authorizeUrl } = await startAuthorization(stack);
  const redirect = await approveInSandbox(authorizeUrl, patientId);
  const res = await deliverCallback(stack, redirect);
  if (res.statusCode !== 201 || !res.body.data) throw new Error(`callback answered ${res.statusCode}: ${JSON.stringify(res.body)}`);
  return res.body.data;
}

/**
 * Revokes a patient connection's grant the way a refresh-token replay does: the token is spent, then the spent one
 * is re-used (rotation), so the server revokes the grant; access tokens are expired, so the next call must refresh
 * and is refused.
 */
export async function revokeGrant(stack: TestStack, connectionId: string): Promise<void> {
  const doc = await stack.services.connections.get(connectionId);
  const stolen = stack.services.connections.openTokens(doc)!.refreshToken!;
  const tokenUrl = `${stack.sandbox.url}/oauth/token`;
  const form = { grant_type: 'refresh_token', refresh_token: stolen };
  const auth = { username: 'ehr-sync-local', password: 'ehr-sync-local-secret' };
  await got.post(tokenUrl, { form, ...auth });
  await got.post(tokenUrl, { form, ...auth, throwHttpErrors: false });
  stack.sandbox.admin.expireAccessTokens();
}
