import { RateLimiter as SandboxLimiter } from '../../src/sandbox/limits/rate-limiter';
import type { Quota } from '../../src/providers/schema';
import {
  blockForServerRemaining,
  bucketParams,
  firstFreeSlot,
  parseRateHeaders,
  planObserve,
  slotSendTime,
  windowBucketParams,
  type BucketParams,
} from '../../src/limits/math';

/**
 * Simulates processes claiming slot tickets from one shared set (as the unique _id does), each with its own hint,
 * sending at the slot's time plus some lateness, against the sandbox's own limiter on a fake clock.
 */
function simulate(p: BucketParams, server: SandboxLimiter, setClock: (t: number) => void, opts: { processes: number; callers: number; untilMs: number; lateMs: (i: number) => number; start?: number }) {
  const taken = new Set<number>();
  const hints = Array<number>(opts.processes).fill(-Infinity);
  const claim = (proc: number, now: number): number => {
    let k = Math.max(firstFreeSlot(now, 0, p), hints[proc]!);
    while (taken.has(k)) k++;
    taken.add(k);
    hints[proc] = k + 1;
    return slotSendTime(k, now, p);
  };
  const start = opts.start ?? 0;
  // Every caller claims, waits for its slot, sends, and claims again at once (full demand).
  const due: Array<{ at: number; proc: number }> = [];
  for (let c = 0; c < opts.callers; c++) due.push({ at: claim(c % opts.processes, start), proc: c % opts.processes });
  let sent = 0;
  let refused = 0;
  let i = 0;
  for (;;) {
    due.sort((x, y) => x.at - y.at);
    const next = due.shift()!;
    if (next.at > start + opts.untilMs) break;
    const arrival = next.at + opts.lateMs(i++);
    setClock(arrival);
    if (server.take().allowed) sent++;
    else refused++;
    due.push({ at: claim(next.proc, next.at), proc: next.proc });
  }
  return { sent, refused };
}

describe('token bucket as slot tickets', () => {
  test('a fresh bucket lets `burst - reserve` go at once, then one per interval', () => {
    const p = bucketParams({ ratePerSecond: 7, burst: 14 });
    expect(p.burst).toBe(12);
    const now = 1_000_000;
    const first = firstFreeSlot(now, 0, p);
    const times = Array.from({ length: 14 }, (_, i) => slotSendTime(first + i, now, p));
    // 12 at once, or 11 when `now` falls inside a slot (the slot that has begun is not used).
    const atOnce = times.filter((t) => t === now).length;
    expect(atOnce === 11 || atOnce === 12).toBe(true);
    expect(slotSendTime(first + 11, first * p.intervalMs, p)).toBeCloseTo(first * p.intervalMs, 6);
    expect(times[13]! - times[12]!).toBeCloseTo(1000 / 7, 6);
  });

  test('after a block the first slot goes at the block end, then one per interval', () => {
    const p = bucketParams({ ratePerSecond: 7, burst: 14 });
    const k = firstFreeSlot(1_000, 5_000, p);
    expect(slotSendTime(k, 1_000, p)).toBeGreaterThanOrEqual(5_000);
    expect(slotSendTime(k, 1_000, p)).toBeLessThan(5_000 + 1000 / 7);
    expect(slotSendTime(k + 1, 1_000, p) - slotSendTime(k, 1_000, p)).toBeCloseTo(1000 / 7, 6);
  });

  test('two processes at full demand, with up to 250 ms late sends, are never refused by the sandbox bucket and get >= 95%', () => {
    let clock = 0;
    const server = new SandboxLimiter({ mode: 'token-bucket', ratePerSecond: 7, burst: 14 }, () => clock);
    const p = bucketParams({ ratePerSecond: 7, burst: 14 });
    const r = simulate(p, server, (t) => (clock = t), { processes: 2, callers: 16, untilMs: 600_000, lateMs: (i) => (i % 7 === 0 ? 250 : i % 3) });
    expect(r.refused).toBe(0);
    expect(r.sent / 600).toBeGreaterThanOrEqual(0.95 * 7);
  });

  test('server remaining within the reserve holds the bucket until the server has refilled', () => {
    const p = bucketParams({ ratePerSecond: 7, burst: 14 });
    expect(blockForServerRemaining(5, 1_000, p)).toBeUndefined();
    expect(blockForServerRemaining(0, 1_000, p)).toBeCloseTo(1_000 + 3000 / 7, 6);
  });
});

describe('fixed window as a burst-1 bucket', () => {
  test('whatever the server window alignment (fixed or sliding), two processes are never refused and get >= 90% of 10 per 2 s', () => {
    for (const offset of [0, 137, 999, 1_503, 1_999]) {
      for (const blockRestOfWindow of [true, false]) {
        let clock = 0;
        const server = new SandboxLimiter({ mode: 'fixed-window', limit: 10, windowSeconds: 2, blockRestOfWindow }, () => clock);
        const p = windowBucketParams({ limit: 10, windowSeconds: 2 });
        const r = simulate(p, server, (t) => (clock = t), { processes: 2, callers: 6, untilMs: 120_000, start: offset, lateMs: (i) => i % 5 });
        expect(r.refused).toBe(0);
        expect(r.sent / 60 / 10).toBeGreaterThanOrEqual(0.9);
      }
    }
  });

  test('250 per minute: >= 99% of the limit', () => {
    const p = windowBucketParams({ limit: 250, windowSeconds: 60 });
    expect(60_000 / p.intervalMs / 250).toBeGreaterThanOrEqual(0.99);
  });
});

describe('headers', () => {
  test('a 429 block is bounded by the maximum, whatever the Retry-After (epoch ms, far date, garbage)', () => {
    const now = Date.UTC(2026, 0, 1, 12, 0, 0);
    const q: Quota[] = [{ name: 's', kind: 'token-bucket', ratePerSecond: 7, burst: 14, shareBy: 'provider' }];
    const max = 5_000;
    const epochMs = planObserve(q, 429, { 'retry-after': '1796159374838' }, now, max);
    expect(epochMs[0]?.blockUntil).toBe(now + max);
    expect(epochMs[0]?.retryAfterClamped?.reason).toBe('too-long');
    expect(planObserve(q, 429, { 'retry-after': 'Sat, 01 Jan 58944 00:00:00 GMT' }, now, max)[0]?.blockUntil).toBeLessThanOrEqual(now + max);
    const garbage = planObserve(q, 429, { 'retry-after': 'soon' }, now, max)[0];
    expect(garbage?.blockUntil).toBe(now);
    expect(garbage?.retryAfterClamped?.reason).toBe('unparseable');
    expect(planObserve(q, 429, { 'retry-after': '3' }, now, max)[0]).toEqual({ index: 0, blockUntil: now + 3000 });
    // X-RateLimit-Reset far away on a window: bounded as well.
    const w: Quota[] = [{ name: 'p', kind: 'fixed-window', limit: 250, windowSeconds: 60, shareBy: 'baseUrl', blockRestOfWindowOn429: true }];
    expect(planObserve(w, 429, { 'retry-after': '1', 'x-ratelimit-reset': '99999999' }, now, max)[0]?.blockUntil).toBe(now + max);
  });

  test('X-RateLimit-Reset as delta or epoch seconds', () => {
    const now = 1_800_000_000_000;
    expect(parseRateHeaders({ 'x-ratelimit-limit': '14', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '2' }, now)).toEqual({ limit: 14, remaining: 0, resetSeconds: 2 });
    expect(parseRateHeaders({ 'x-ratelimit-reset': String(now / 1000 + 30) }, now).resetSeconds).toBe(30);
  });
});

describe('planObserve', () => {
  const ecw: Quota[] = [
    { name: 'per-second', kind: 'token-bucket', shareBy: 'provider', ratePerSecond: 7, burst: 14 },
    { name: 'daily', kind: 'fixed-window', shareBy: 'provider', limit: 100_000, windowSeconds: 86_400, blockRestOfWindowOn429: false },
  ];
  const practice: Quota[] = [{ name: 'practice', kind: 'fixed-window', shareBy: 'baseUrl', limit: 250, windowSeconds: 60, blockRestOfWindowOn429: true }];
  const now = 1_000_000;

  test('429 blocks every quota until Retry-After', () => {
    const a = planObserve(ecw, 429, { 'retry-after': '2', 'x-ratelimit-limit': '14', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '2' }, now);
    expect(a.map((x) => x.blockUntil)).toEqual([now + 2000, now + 2000]);
  });

  test('429 on a blockRestOfWindowOn429 window blocks until the window ends (Reset), even with a shorter Retry-After', () => {
    const a = planObserve(practice, 429, { 'retry-after': '1', 'x-ratelimit-limit': '250', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '41' }, now);
    expect(a).toEqual([{ index: 0, blockUntil: now + 41_000 }]);
    const b = planObserve(practice, 429, { 'retry-after': '1' }, now);
    expect(b).toEqual([{ index: 0, blockUntil: now + 1000, untilWindowClear: true }]);
  });

  test('remaining is routed to the quota whose capacity matches X-RateLimit-Limit', () => {
    expect(planObserve(ecw, 200, { 'x-ratelimit-limit': '14', 'x-ratelimit-remaining': '3', 'x-ratelimit-reset': '2' }, now)).toEqual([{ index: 0, serverRemaining: 3 }]);
    expect(planObserve(practice, 200, { 'x-ratelimit-limit': '250', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '12' }, now)).toEqual([{ index: 0, blockUntil: now + 12_000, serverRemaining: 0 }]);
    // Limits that differ from the configuration: remaining 0 holds everything until Reset.
    expect(planObserve(practice, 200, { 'x-ratelimit-limit': '100', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '5' }, now)).toEqual([{ index: 0, blockUntil: now + 5000 }]);
    expect(planObserve(practice, 200, { 'x-ratelimit-limit': '100', 'x-ratelimit-remaining': '7', 'x-ratelimit-reset': '5' }, now)).toEqual([]);
    expect(planObserve(ecw, 200, {}, now)).toEqual([]);
  });
});
