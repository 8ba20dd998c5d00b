import { syncPointOf } from '../../src/activities/sync';

describe('syncPointOf: the sync point is an instant the data supports', () => {
  test("the first page's Bundle meta.lastUpdated (the server's clock) when given", () => {
    expect(syncPointOf({ lastUpdated: '2026-12-01T11:50:00.000Z', requestedAt: '2026-12-01T12:00:00.000Z' }, 300_000)).toEqual({
      startedAt: '2026-12-01T11:50:00.000Z',
      syncPointSource: 'bundle',
    });
  });

  test('otherwise the time the first page was requested minus the clock-skew margin', () => {
    expect(syncPointOf({ requestedAt: '2026-12-01T12:00:00.000Z' }, 300_000)).toEqual({ startedAt: '2026-12-01T11:55:00.000Z', syncPointSource: 'request-time' });
    expect(syncPointOf({ requestedAt: '2026-12-01T12:00:00.000Z' }, 0).startedAt).toBe('2026-12-01T12:00:00.000Z');
  });
});
