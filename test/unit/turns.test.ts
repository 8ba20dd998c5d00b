import { TurnQueue } from '../../src/limits/turns';

describe('TurnQueue (one turn at a time per key, in arrival order)', () => {
  test('takers of one key go in turn; other keys do not wait; the map forgets released keys', async () => {
    const q = new TurnQueue();
    const order: string[] = [];
    const r1 = await q.take('a');
    const second = q.take('a').then((release) => {
      order.push('a2');
      return release;
    });
    const other = await q.take('b');
    order.push('b1');
    await Promise.resolve();
    expect(order).toEqual(['b1']);
    r1();
    const r2 = await second;
    expect(order).toEqual(['b1', 'a2']);
    r2();
    other();
    await new Promise((r) => setImmediate(r));
    expect(q.size).toBe(0);
  });

  test('an abort while waiting rejects with the reason and does not hold later takers', async () => {
    const q = new TurnQueue();
    const r1 = await q.take('k');
    const ac = new AbortController();
    const aborted = q.take('k', ac.signal);
    const third = q.take('k');
    ac.abort(new Error('cancelled'));
    await expect(aborted).rejects.toThrow('cancelled');
    r1();
    const r3 = await third;
    r3();
    await new Promise((r) => setImmediate(r));
    expect(q.size).toBe(0);
  });
});
