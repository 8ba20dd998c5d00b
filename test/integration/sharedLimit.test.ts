import { NativeConnection, Worker } from '@temporalio/worker';
import type { EnhancedSyncResult } from '../../src/workflows/enhancedSync';
import { createServices, type Services } from '../../src/services';
import { workerOptions } from '../../src/worker';
import { connectPatient } from '../support/smartFlow';
import { startStack, type TestStack } from '../support/stack';
import { WORKFLOW_BUNDLE_PATH } from '../support/paths';
import { WORKFLOWS } from '../../src/jobs/contract';

/**
 * Two worker processes' worth of workers (each with its own MongoDB client and limiter instance, as separate
 * processes would have) sync two connections at once against a sandbox that enforces the eClinicalWorks limit
 * (7 requests/s, burst 14). The shared limiter must keep the sum under the limit: the sandbox refuses nothing.
 */
describe('two workers, two connections, one shared quota', () => {
  let stack: TestStack;
  const extra: Services[] = [];
  const connections: NativeConnection[] = [];
  beforeAll(async () => {
    stack = await startStack({ noWorker: true, sandbox: { patients: 3, resourcesPerPatient: 4 } });
  });
  afterAll(async () => {
    for (const s of extra) await s.close();
    await stack?.close();
    for (const c of connections) await c.close().catch(() => undefined);
  });

  it('never draws a 429 and stores both patients completely', async () => {
    const a = await connectPatient(stack, stack.sandbox.admin.listPatients()[0]!.id);
    const b = await connectPatient(stack, stack.sandbox.admin.listPatients()[1]!.id);
    stack.sandbox.admin.setRateLimit({ mode: 'token-bucket', ratePerSecond: 7, burst: 14 });
    stack.sandbox.admin.resetStats();

    const workers: Worker[] = [];
    for (let i = 0; i < 2; i++) {
      const services = await createServices(stack.config);
      extra.push(services);
      // Its own connection too: the SDK allows one worker per task queue and connection in a process.
      const connection = await NativeConnection.connect({ address: stack.env.address });
      connections.push(connection);
      workers.push(
        await Worker.create({
          connection,
          taskQueue: stack.taskQueue,
          workflowBundle: { codePath: WORKFLOW_BUNDLE_PATH },
          ...workerOptions(services),
        }),
      );
    }
    const start = (connectionId: string) =>
      stack.client.workflow.start(WORKFLOWS.enhancedSync.name, {
        taskQueue: stack.taskQueue,
        workflowId: `enhanced-sync-${connectionId}-shared-limit`,
        args: [{ connectionId, includeStandard: true, includeEnhanced: true, pageSize: 2 }],
      });
    const [ha, hb] = await Promise.all([start(a.connectionId), start(b.connectionId)]);
    const both = Promise.all([ha.result(), hb.result()]) as Promise<EnhancedSyncResult[]>;
    const [ra, rb] = await Promise.all(workers.map((w) => w.runUntil(both))).then((r) => r[0]!);

    const stats = stack.sandbox.admin.getStats();
    expect(stats.byKind.search.total).toBeGreaterThan(40); // enough traffic to have hit the limit without sharing
    expect(stats.rateLimited).toBe(0);
    expect(stats.tooManyRequests).toBe(0);
    for (const [conn, result] of [
      [a, ra],
      [b, rb],
    ] as const) {
      const stored = await stack.services.resources.count({ connectionId: conn.connectionId });
      expect(result!.total).toBe(stored);
      const observations = stack.sandbox.admin.getResources('Observation', { patient: conn.patientId }).length;
      expect(await stack.services.resources.count({ connectionId: conn.connectionId, resourceType: 'Observation' })).toBe(observations);
    }
  });
});
