/**
 * The fleet of bench/fleet.ts: the sandbox's practices with their quotas, the service's matching per-practice
 * configuration, and the connections (backend and patient launches mixed) made through the service's own SMART code.
 */
import { randomBytes } from 'node:crypto';
import * as jose from 'jose';
import { RESOURCE_TYPES, startSandbox, type RateLimitConfig, type Sandbox } from '../src/sandbox';
import type { Services } from '../src/services';
import type { Quota } from '../src/providers/schema';

export const REDIRECT_URI = 'http://127.0.0.1:3000/api/ehr/callback';

export interface FleetScale {
  practices: number;
  patientsPerPractice: number;
  /** About this many resources per patient over the 12 types (the patient plus 11 clinical types). */
  resources: number;
  /** Patients per practice with 10× the data. */
  largePerPractice: number;
  /** The sandbox's largest page (the service asks for 1,000 and gets at most this). */
  pageSize: number;
}

/** A practice's quota, as the sandbox enforces it and the service is configured with it. */
export interface PracticeQuota {
  label: string;
  sandbox: RateLimitConfig;
  /** Null: the provider's default (7/s burst 14, 100,000/day per practice). */
  service: Quota[] | null;
  /** Sustained requests per second, and what may go at once. */
  ratePerSecond: number;
  burst: number;
}

const DEFAULT_QUOTA: PracticeQuota = {
  label: '7/s burst 14',
  sandbox: { mode: 'token-bucket', ratePerSecond: 7, burst: 14, dailyLimit: 100_000 },
  service: null,
  ratePerSecond: 7,
  burst: 14,
};
const PER_MINUTE: PracticeQuota = {
  label: '250/min',
  sandbox: { mode: 'fixed-window', limit: 250, windowSeconds: 60, blockRestOfWindow: true },
  service: [{ name: 'practice', kind: 'fixed-window', shareBy: 'baseUrl', limit: 250, windowSeconds: 60, blockRestOfWindowOn429: true }],
  ratePerSecond: 250 / 60,
  burst: 1,
};
const FIVE_PER_SECOND: PracticeQuota = {
  label: '5/s burst 10, 20,000/day',
  sandbox: { mode: 'token-bucket', ratePerSecond: 5, burst: 10, dailyLimit: 20_000 },
  service: [
    { name: 'per-second', kind: 'token-bucket', shareBy: 'baseUrl', ratePerSecond: 5, burst: 10 },
    { name: 'daily', kind: 'fixed-window', shareBy: 'baseUrl', limit: 20_000, windowSeconds: 86_400, blockRestOfWindowOn429: false },
  ],
  ratePerSecond: 5,
  burst: 10,
};

/** Half the practices on the guide's 7/s, a quarter on eClinicalWorks' published 250/min, a quarter on 5/s with a daily cap. */
export function quotaOf(index: number): PracticeQuota {
  return index % 4 === 1 ? PER_MINUTE : index % 4 === 3 ? FIVE_PER_SECOND : DEFAULT_QUOTA;
}

export function practiceCode(index: number): string {
  return `p${String(index).padStart(3, '0')}`;
}

export async function startFleetSandbox(scale: FleetScale): Promise<Sandbox> {
  const clinical = RESOURCE_TYPES.slice(1, 12);
  const perType = Math.max(1, Math.round((scale.resources - 1) / clinical.length));
  return startSandbox({
    port: 0,
    patients: 1,
    redirectUris: [REDIRECT_URI],
    maxPageSize: scale.pageSize,
    // Backend-services tokens last 5 minutes (the sandbox's default, as on many servers); shorter makes every phase renew them.
    backendTokenTtlSeconds: Number(process.env.FLEET_BACKEND_TOKEN_TTL ?? 300),
    // Quotas are set once the connections exist (the set-up's OAuth traffic is not part of any phase).
    practices: Array.from({ length: scale.practices }, (_, i) => ({
      code: practiceCode(i),
      patients: scale.patientsPerPractice,
      resourcesPerPatient: perType,
      largePatients: Math.min(scale.largePerPractice, scale.patientsPerPractice),
      largePatientFactor: 10,
    })),
  });
}

/** Every practice gets its quota (a bucket starts full). */
export function applyQuotas(sb: Sandbox, practices: number): void {
  for (let i = 0; i < practices; i++) sb.admin.practice(practiceCode(i)).setRateLimit(quotaOf(i).sandbox);
}

/** The service's provider configuration: the practices' base URLs allowed, and each non-default quota by base URL. */
export function providersJson(sb: Sandbox, practices: number): string {
  const perBaseUrl = Array.from({ length: practices }, (_, i) => i)
    .filter((i) => quotaOf(i).service)
    .map((i) => ({ baseUrl: sb.practiceBaseUrl(practiceCode(i)), display: quotaOf(i).label, quotas: quotaOf(i).service }));
  return JSON.stringify([{ id: 'eclinicalworks', allowedBaseUrls: [`${sb.fhirBaseUrl}/*`], rateLimit: { perBaseUrl } }]);
}

export interface FleetConnection {
  connectionId: string;
  practice: number;
  patientId: string;
  kind: 'backend' | 'patient';
  large: boolean;
}

/** One backend client registered with the vendor (the sandbox shares registrations across its practices). */
export async function registerBackendClient(sb: Sandbox): Promise<{ clientId: string; privateKey: string }> {
  const clientId = `fleet-${randomBytes(4).toString('hex')}`;
  const { publicKey, privateKey } = await jose.generateKeyPair('ES384', { extractable: true });
  sb.admin.registerClient({ clientId, jwks: { keys: [{ ...(await jose.exportJWK(publicKey)), kid: 'k1', alg: 'ES384' } as { kty: string }] } });
  return { clientId, privateKey: await jose.exportPKCS8(privateKey) };
}

/** A standalone patient launch at a practice, the picker answered as the user would. */
async function patientLaunch(services: Services, sb: Sandbox, base: string, patientId: string): Promise<string> {
  const { authorizeUrl } = await services.smartAuth.beginAuthorization('eclinicalworks', { fhirBaseUrl: base });
  const html = await (await fetch(authorizeUrl)).text();
  const tx = /name="tx" value="([^"]+)"/.exec(html)?.[1];
  const action = /<form method="post" action="([^"]+)"/.exec(html)?.[1];
  if (!tx || !action) throw new Error(`no authorization page at ${base}`);
  const decided = await fetch(`${sb.url}${action}`, {
    method: 'POST',
    body: new URLSearchParams({ tx, patient: patientId, decision: 'approve' }),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    redirect: 'manual',
  });
  const location = decided.headers.get('location');
  if (!location) throw new Error(`the picker at ${base} answered ${decided.status}`);
  const doc = await services.smartAuth.completeAuthorization(Object.fromEntries(new URL(location).searchParams));
  return doc._id;
}

/** Connects every patient of every practice: even patients by backend services, odd ones by a patient launch. */
export async function connectFleet(
  services: Services,
  sb: Sandbox,
  scale: FleetScale,
  backend: { clientId: string; privateKey: string },
  progress: (done: number, total: number) => void,
): Promise<FleetConnection[]> {
  const todo: Array<Omit<FleetConnection, 'connectionId'>> = [];
  for (let p = 0; p < scale.practices; p++) {
    for (let i = 0; i < scale.patientsPerPractice; i++) {
      todo.push({ practice: p, patientId: `pat-${String(i).padStart(6, '0')}`, kind: i % 2 === 0 ? 'backend' : 'patient', large: i < scale.largePerPractice });
    }
  }
  const out: FleetConnection[] = [];
  let next = 0;
  const lane = async () => {
    while (next < todo.length) {
      const c = todo[next++]!;
      const base = sb.practiceBaseUrl(practiceCode(c.practice));
      const connectionId =
        c.kind === 'backend'
          ? (await services.smartAuth.createBackendConnection('eclinicalworks', { ...backend, alg: 'ES384', kid: 'k1', fhirBaseUrl: base, patientId: c.patientId }))._id
          : await patientLaunch(services, sb, base, c.patientId);
      out.push({ ...c, connectionId });
      if (out.length % 50 === 0 || out.length === todo.length) progress(out.length, todo.length);
    }
  };
  await Promise.all(Array.from({ length: 8 }, lane));
  return out.sort((a, b) => a.practice - b.practice || a.patientId.localeCompare(b.patientId));
}
