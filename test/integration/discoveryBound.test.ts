import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { startAuthorization } from '../support/smartFlow';
import { startStack, type TestStack } from '../support/stack';

const DISCOVERY_TIMEOUT_MS = 1500;
/** What a loaded machine may add to the bound before the answer is seen. */
const SLACK_MS = 2500;

/** A host that accepts TCP connections and never answers: the case that held POST …/authorize for 33 s. */
let blackhole: net.Server;
const accepted: net.Socket[] = [];
let silentBase: string;
let stack: TestStack;

beforeAll(async () => {
  blackhole = net.createServer((socket) => {
    accepted.push(socket);
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => blackhole.listen(0, '127.0.0.1', resolve));
  silentBase = `http://127.0.0.1:${(blackhole.address() as AddressInfo).port}/fhir/r4`;
  stack = await startStack({
    configEnv: {
      DISCOVERY_TIMEOUT_MS: String(DISCOVERY_TIMEOUT_MS),
      DISCOVERY_FAILURE_CACHE_SECONDS: '60',
      EHR_PROVIDERS_JSON: JSON.stringify([{ id: 'eclinicalworks', allowedBaseUrls: [silentBase] }]),
    },
  });
});
afterAll(async () => {
  await stack?.close();
  for (const s of accepted) s.destroy();
  await new Promise((resolve) => blackhole?.close(resolve));
});

describe('SMART discovery is bounded in time and cached per base URL', () => {
  it('asks the FHIR server once for two authorizations (the SMART configuration is cached)', async () => {
    stack.sandbox.admin.resetStats();
    await startAuthorization(stack);
    await startAuthorization(stack);
    expect(stack.sandbox.admin.getStats().byKind['smart-config'].total).toBe(1);
  });

  it('an allowed host that never answers fails POST …/authorize within DISCOVERY_TIMEOUT_MS, with a message naming it', async () => {
    const started = Date.now();
    const res = await stack.api.post('api/ehr/eclinicalworks/authorize', { json: { fhirBaseUrl: silentBase } });
    const elapsed = Date.now() - started;
    expect(res.statusCode).toBe(504);
    expect(res.body.error?.code).toBe('FHIR_DISCOVERY_FAILED');
    expect(res.body.error?.message).toContain(`The FHIR server at ${silentBase} did not answer its SMART discovery`);
    expect(res.body.error?.message).toMatch(/within 1500 ms \(DISCOVERY_TIMEOUT_MS\)/);
    expect(accepted.length).toBeGreaterThan(0); // it really was asked
    expect(elapsed).toBeGreaterThanOrEqual(DISCOVERY_TIMEOUT_MS - 50);
    expect(elapsed).toBeLessThan(DISCOVERY_TIMEOUT_MS + SLACK_MS);
    expect(await stack.services.db.collection('oauth_states').countDocuments({ fhirBaseUrl: silentBase })).toBe(0);
  });

  it('the failure is remembered for DISCOVERY_FAILURE_CACHE_SECONDS: the host is not asked again meanwhile', async () => {
    const before = accepted.length;
    const started = Date.now();
    const res = await stack.api.post('api/ehr/eclinicalworks/authorize', { json: { fhirBaseUrl: silentBase } });
    expect(res.statusCode).toBe(504);
    expect(res.body.error?.message).toMatch(/did not answer its SMART discovery/);
    expect(Date.now() - started).toBeLessThan(DISCOVERY_TIMEOUT_MS);
    expect(accepted.length).toBe(before);
  });
});
