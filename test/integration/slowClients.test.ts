import net from 'node:net';
import { connectPatient } from '../support/smartFlow';
import { loadApiConfig } from '../../src/config';
import { eventually } from '../support/bulkExport';
import { startStack, testConfigEnv, type TestStack } from '../support/stack';

const HEADERS_MS = 1000;
const REQUEST_MS = 3000;
const BODY_IDLE_MS = 800;
/** What a loaded machine may add to a bound before the answer is seen (Node checks the bounds periodically). */
const SLACK_MS = 2500;

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack({
    configEnv: { API_HEADERS_TIMEOUT_MS: String(HEADERS_MS), API_REQUEST_TIMEOUT_MS: String(REQUEST_MS), API_BODY_IDLE_TIMEOUT_MS: String(BODY_IDLE_MS) },
  });
});
afterAll(async () => {
  await stack?.close();
});

interface RawAnswer {
  status: number;
  body: { success?: boolean; error?: { code: string; message: string } } | undefined;
  elapsedMs: number;
  closed: boolean;
}

/**
 * A raw client: writes `first`, then `drip` every `dripMs` (if any), and reads until the server closes the socket or
 * `giveUpMs` passes (so a server without timeouts fails the test instead of hanging it).
 */
function rawRequest(first: string, opts: { drip?: string; dripMs?: number; giveUpMs?: number } = {}): Promise<RawAnswer> {
  const { port } = new URL(stack.apiUrl);
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = net.connect(Number(port), '127.0.0.1');
    let data = '';
    let timer: NodeJS.Timeout | undefined;
    const finish = (closed: boolean) => {
      clearInterval(timer);
      clearTimeout(giveUp);
      socket.destroy();
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0);
      const raw = data.split('\r\n\r\n').slice(1).join('\r\n\r\n');
      let body: RawAnswer['body'];
      try {
        body = JSON.parse(raw);
      } catch {
        body = undefined;
      }
      resolve({ status, body, elapsedMs: Date.now() - started, closed });
    };
    const giveUp = setTimeout(() => finish(false), opts.giveUpMs ?? 15_000);
    socket.on('connect', () => {
      socket.write(first);
      if (opts.drip) timer = setInterval(() => socket.writable && socket.write(opts.drip as string), opts.dripMs);
    });
    socket.on('data', (d) => (data += String(d)));
    socket.on('close', () => finish(true));
    socket.on('error', () => undefined);
  });
}

const post = (length: number) =>
  `POST /api/ehr/eclinicalworks/authorize HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: ${stack.apiKey}\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`;

describe('slow clients are cut off with a 408 that names the bound', () => {
  it('a body that stalls is answered 408 after API_BODY_IDLE_TIMEOUT_MS', async () => {
    const res = await rawRequest(`${post(100)}{"scopes":`);
    expect(res.closed).toBe(true);
    expect(res.status).toBe(408);
    expect(res.body?.error).toMatchObject({ code: 'REQUEST_TIMEOUT' });
    expect(res.body?.error?.message).toMatch(/body stalled: no data arrived for 800 ms \(API_BODY_IDLE_TIMEOUT_MS\)/);
    expect(res.elapsedMs).toBeGreaterThanOrEqual(BODY_IDLE_MS - 50);
    expect(res.elapsedMs).toBeLessThan(BODY_IDLE_MS + SLACK_MS);
  });

  it('a body that trickles in (never idle long enough) is cut off after API_REQUEST_TIMEOUT_MS', async () => {
    const res = await rawRequest(`${post(10_000)}{`, { drip: ' ', dripMs: 200 });
    expect(res.closed).toBe(true);
    expect(res.status).toBe(408);
    expect(res.body?.error?.message).toMatch(/request body did not arrive within 3000 ms \(API_REQUEST_TIMEOUT_MS\)/);
    expect(res.elapsedMs).toBeGreaterThanOrEqual(REQUEST_MS - 50);
    expect(res.elapsedMs).toBeLessThan(REQUEST_MS + SLACK_MS);
  });

  it('headers that never finish are answered 408 after API_HEADERS_TIMEOUT_MS', async () => {
    const res = await rawRequest('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
    expect(res.closed).toBe(true);
    expect(res.status).toBe(408);
    expect(res.body?.error?.message).toMatch(/request line and headers did not arrive within 1000 ms \(API_HEADERS_TIMEOUT_MS\)/);
    expect(res.elapsedMs).toBeGreaterThanOrEqual(HEADERS_MS - 50);
    expect(res.elapsedMs).toBeLessThan(HEADERS_MS + SLACK_MS);
  });

  it('a complete request whose handler takes longer than the request bound still gets its answer', async () => {
    const conn = await connectPatient(stack);
    stack.sandbox.admin.setFaults({ delayMs: 1500, applyTo: ['search'] });
    try {
      const started = Date.now();
      const res = await stack.api.post<{ id: string; status: string }>('api/ehr/eclinicalworks/enhanced-sync', { json: { connectionId: conn.connectionId, pageSize: 1, waitMs: REQUEST_MS + 1000 } });
      expect(Date.now() - started).toBeGreaterThan(REQUEST_MS);
      expect([200, 202]).toContain(res.statusCode);
      expect(res.body.success).toBe(true);
      stack.sandbox.admin.resetFaults();
      // Let the sync end before the stack closes.
      await eventually(async () => (await stack.services.jobs.find(res.body.data!.id))?.status === 'COMPLETED', 'the sync to complete', 60_000);
    } finally {
      stack.sandbox.admin.resetFaults();
    }
  });

  it('refuses a headers bound above the request bound at start-up', async () => {
    expect(() => loadApiConfig(testConfigEnv(stack.sandbox, { API_HEADERS_TIMEOUT_MS: '5000', API_REQUEST_TIMEOUT_MS: '4000' }))).toThrow(
      /API_HEADERS_TIMEOUT_MS: must not exceed API_REQUEST_TIMEOUT_MS/,
    );
  });
});
