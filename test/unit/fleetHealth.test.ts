import { classify } from '../../src/connections/fleetHealth';

const now = new Date('2026-12-02T12:00:00Z');
const ago = (s: number) => new Date(now.getTime() - s * 1000);
const active = { status: 'active' as const, createdAt: ago(10 * 86_400) };

describe('fleet view: one connection\'s health from its status and last outcomes', () => {
  it('healthy: a recent success, no failure since; the lag counts from the latest success of either type', () => {
    const h = classify(active, { 'enhanced-sync': { lastSuccess: { jobId: 's1', at: ago(600) } }, 'bulk-export': { lastSuccess: { jobId: 'e1', at: ago(60) } } }, now, 3600);
    expect(h).toMatchObject({ state: 'healthy', problems: [], lagSeconds: 60, neverSucceeded: false, lastSync: { jobId: 's1' }, lastExport: { jobId: 'e1' } });
  });

  it('failing only when the last outcome of a type is a failure; an older failure is shown but is not a problem', () => {
    const recovered = classify(active, { 'enhanced-sync': { lastSuccess: { jobId: 's2', at: ago(60) }, lastFailure: { jobId: 's1', at: ago(600), message: 'boom' } } }, now, 3600);
    expect(recovered).toMatchObject({ state: 'healthy', problems: [], lastFailure: { jobId: 's1', type: 'enhanced-sync', message: 'boom' } });
    const failing = classify(active, { 'enhanced-sync': { lastSuccess: { jobId: 's1', at: ago(600) } }, 'bulk-export': { lastFailure: { jobId: 'e1', at: ago(30), message: 'refused' } } }, now, 3600);
    expect(failing).toMatchObject({ state: 'failing', problems: ['failing'], lastFailure: { jobId: 'e1', type: 'bulk-export' } });
  });

  it('stale past the bound, counted from creation when nothing ever succeeded; re-authorization comes first', () => {
    expect(classify(active, {}, now, 3600)).toMatchObject({ state: 'stale', problems: ['stale'], neverSucceeded: true, lagSeconds: 10 * 86_400 });
    expect(classify({ status: 'active', createdAt: ago(60) }, {}, now, 3600)).toMatchObject({ state: 'healthy', neverSucceeded: true, lagSeconds: 60 });
    const all = classify({ status: 'needs_reauthorization', statusReason: 'refresh refused', createdAt: ago(86_400) }, { 'enhanced-sync': { lastFailure: { jobId: 's1', at: ago(7200), message: 'x' } } }, now, 3600);
    expect(all).toMatchObject({ state: 'needs_reauthorization', problems: ['needs_reauthorization', 'failing', 'stale'], statusReason: 'refresh refused' });
  });
});
