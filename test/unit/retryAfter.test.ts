import fc from 'fast-check';
import { parseRetryAfter, retryAfterSeconds } from '../../src/fhir/retryAfter';

const NOW = Date.UTC(2026, 11, 1, 12, 0, 0);
const MAX = 600_000;

describe('parseRetryAfter', () => {
  test('delta-seconds and HTTP dates within the bound are taken as they are', () => {
    expect(parseRetryAfter('3', NOW, MAX)).toEqual({ ms: 3000, clamped: false, raw: '3' });
    expect(parseRetryAfter(' 120 ', NOW, MAX)?.ms).toBe(120_000);
    expect(parseRetryAfter(['7', '9'], NOW, MAX)?.ms).toBe(7000);
    expect(parseRetryAfter(new Date(NOW + 7000).toUTCString(), NOW, MAX)).toMatchObject({ ms: 7000, clamped: false });
    // A date already past means "now", not nonsense.
    expect(parseRetryAfter(new Date(NOW - 7000).toUTCString(), NOW, MAX)).toMatchObject({ ms: 0, clamped: false });
  });

  test('no header: undefined (the caller uses its own default)', () => {
    expect(parseRetryAfter(undefined, NOW, MAX)).toBeUndefined();
    expect(parseRetryAfter('', NOW, MAX)).toBeUndefined();
    expect(parseRetryAfter('   ', NOW, MAX)).toBeUndefined();
    expect(parseRetryAfter([], NOW, MAX)).toBeUndefined();
  });

  test('epoch milliseconds and far dates are clamped to the maximum', () => {
    expect(parseRetryAfter('1796159374838', NOW, MAX)).toEqual({ ms: MAX, clamped: true, reason: 'too-long', raw: '1796159374838' });
    expect(parseRetryAfter('Sat, 01 Jan 58944 00:00:00 GMT', NOW, MAX)).toMatchObject({ ms: MAX, clamped: true, reason: 'too-long' });
    expect(parseRetryAfter('1e400', NOW, MAX)).toMatchObject({ clamped: true });
    expect(parseRetryAfter('9'.repeat(400), NOW, MAX)).toMatchObject({ ms: MAX, clamped: true, reason: 'too-long' });
  });

  test('negative and non-numeric values are no wait, flagged as clamped', () => {
    expect(parseRetryAfter('-5', NOW, MAX)).toEqual({ ms: 0, clamped: true, reason: 'negative', raw: '-5' });
    expect(parseRetryAfter('soon', NOW, MAX)).toMatchObject({ ms: 0, clamped: true, reason: 'unparseable' });
    expect(parseRetryAfter('NaN', NOW, MAX)).toMatchObject({ ms: 0, clamped: true, reason: 'unparseable' });
    expect(parseRetryAfter('0x10', NOW, MAX)).toMatchObject({ ms: 0, clamped: true, reason: 'unparseable' });
    // Date.parse would read a bare number as a year: not an HTTP date.
    expect(parseRetryAfter('2026-12-01', NOW, MAX)).toMatchObject({ ms: 0, clamped: true, reason: 'unparseable' });
  });

  test('seconds for pollers: rounded up, with a note naming the value when clamped', () => {
    expect(retryAfterSeconds('2.2', NOW, MAX)).toEqual({ seconds: 3, clamped: false });
    const r = retryAfterSeconds('1796159374838', NOW, MAX);
    expect(r).toMatchObject({ seconds: 600, clamped: true });
    expect(r?.note).toContain('"1796159374838"');
    expect(r?.note).toContain('600 s');
  });
});

describe('parseRetryAfter, property tests with absurd values', () => {
  const maxArb = fc.integer({ min: 0, max: 10 * 24 * 3600 * 1000 });
  const nowArb = fc.oneof(fc.integer({ min: -8.64e15, max: 8.64e15 }), fc.constantFrom(NaN, Infinity, -Infinity, 0));
  const valueArb = fc.oneof(
    fc.string(),
    fc.double().map(String),
    fc.bigInt().map(String),
    fc.integer({ min: -8.64e15, max: 8.64e15 }).map((t) => new Date(Math.max(-8.64e15, Math.min(8.64e15, t))).toUTCString()),
    fc.date({ noInvalidDate: true }).map((d) => d.toUTCString()),
    fc.constantFrom('Infinity', '-Infinity', '1e308', '-0', '00000', '+5', 'Fri, 31 Dec 275759 23:59:59 GMT', '\u0000', ' 3 '),
  );

  test('the wait is always finite and within [0, max]', () => {
    fc.assert(
      fc.property(valueArb, nowArb, maxArb, (value, now, max) => {
        const r = parseRetryAfter(value, now, max);
        if (r === undefined) return value.trim() === '';
        return Number.isFinite(r.ms) && r.ms >= 0 && r.ms <= max;
      }),
      { numRuns: 5000 },
    );
  });

  test('in seconds too: finite, within [0, ceil(max / 1000)]', () => {
    fc.assert(
      fc.property(valueArb, nowArb, maxArb, (value, now, max) => {
        const r = retryAfterSeconds(value, now, max);
        if (r === undefined) return true;
        return Number.isFinite(r.seconds) && r.seconds >= 0 && r.seconds <= Math.ceil(max / 1000) && r.clamped === (r.note !== undefined);
      }),
      { numRuns: 3000 },
    );
  });

  test('a well-formed value within the bound is never flagged as clamped', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 600 }), (seconds) => {
        const r = parseRetryAfter(String(seconds), NOW, MAX);
        return r !== undefined && !r.clamped && r.ms === seconds * 1000;
      }),
    );
  });
});
