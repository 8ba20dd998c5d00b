import { failureChain, innermost } from '../../src/shared/failureChain';
import { IdempotencyKeySchema } from '../../src/shared/idempotencyKey';
import { isInstant } from '../../src/shared/instant';

class Typed extends Error {}

describe('failureChain', () => {
  test('the error and its causes, outermost first; innermost picks the deepest of a type', () => {
    const inner = new Typed('inner');
    const middle = new Typed('middle', { cause: inner });
    const outer = new Error('outer', { cause: middle });
    expect(failureChain(outer).map((e) => e.message)).toEqual(['outer', 'middle', 'inner']);
    expect(innermost(outer, Typed)).toBe(inner);
    expect(innermost(new Error('plain'), Typed)).toBeUndefined();
    expect(failureChain('not an error')).toEqual([]);
  });

  test('a cause chain that loops back or runs deep ends (bounded)', () => {
    const a = new Error('a');
    const b = new Error('b', { cause: a });
    (a as { cause?: unknown }).cause = b;
    expect(failureChain(b).map((e) => e.message)).toEqual(['b', 'a']);
    let deep = new Error('0');
    for (let i = 1; i < 100; i++) deep = new Error(String(i), { cause: deep });
    expect(failureChain(deep, 10)).toHaveLength(10);
  });
});

describe('one Idempotency-Key pattern and one Instant schema', () => {
  test('8-64 letters, digits, dot, dash or underscore', () => {
    for (const ok of ['abcdefgh', 'order-2026.12.01_a', 'x'.repeat(64), '01J9ZQ3V5Q.K3']) expect(IdempotencyKeySchema.safeParse(ok).success).toBe(true);
    for (const bad of ['short', 'x'.repeat(65), 'key with space', 'key/with/slash', '$where-key', 'key%00nul']) expect(IdempotencyKeySchema.safeParse(bad).success).toBe(false);
  });

  test('instants need a time to the second and a zone', () => {
    expect([isInstant('2026-12-01T10:00:00Z'), isInstant('2026-12-01T10:00:00.123+02:00')]).toEqual([true, true]);
    expect([isInstant('2026-12-01'), isInstant('2026-12-01T10:00:00'), isInstant('2026-12-01T10:00Z'), isInstant(42)]).toEqual([false, false, false, false]);
  });
});
