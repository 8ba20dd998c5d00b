import { canonicalJson, compareSnapshots, deriveSeed, finishSnapshot, prng, resourceHash } from '../../bench/reliability/snapshot';

/**
 * The reliability suite's comparison must be able to fail: a missing, extra, changed or duplicated resource is
 * reported with its key, while key order and write order change nothing.
 */
const obs = (id: string, value: number) => ({ resourceType: 'Observation', id, meta: { versionId: '1' }, valueQuantity: { value, unit: 'kg' } });
const snap = (resources: Array<ReturnType<typeof obs>>) => finishSnapshot(resources.map((r) => ({ key: `Observation/${r.id}`, hash: resourceHash('Observation', r.id, r) })));

const reference = snap([obs('a', 1), obs('b', 2), obs('c', 3)]);

it('equal contents compare equal whatever the write order and the key order', () => {
  const reordered = { valueQuantity: { unit: 'kg', value: 2 }, meta: { versionId: '1' }, id: 'b', resourceType: 'Observation' };
  expect(canonicalJson(reordered)).toBe(canonicalJson(obs('b', 2)));
  expect(compareSnapshots(reference, snap([obs('c', 3), reordered as ReturnType<typeof obs>, obs('a', 1)]))).toBeUndefined();
});

it('names what differs: missing, extra, changed, duplicated', () => {
  expect(compareSnapshots(reference, snap([obs('a', 1), obs('c', 3)]))).toBe('count 2 ≠ 3; 1 missing, first Observation/b');
  expect(compareSnapshots(reference, snap([obs('a', 1), obs('b', 2), obs('c', 3), obs('d', 4)]))).toBe('count 4 ≠ 3; 1 extra, first Observation/d');
  expect(compareSnapshots(reference, snap([obs('a', 1), obs('b', 20), obs('c', 3)]))).toBe('1 with other content, first Observation/b');
  expect(compareSnapshots(reference, snap([obs('a', 1), obs('b', 2), obs('c', 3), obs('b', 2)]))).toBe('1 duplicate(s), first Observation/b; count 4 ≠ 3');
});

it('seeded randomness repeats for the same seed and differs for another', () => {
  const draw = (seed: number) => Array.from({ length: 5 }, prng(seed));
  expect(draw(deriveSeed(7, 'kill-export', 0))).toEqual(draw(deriveSeed(7, 'kill-export', 0)));
  expect(draw(deriveSeed(7, 'kill-export', 0))).not.toEqual(draw(deriveSeed(7, 'kill-export', 1)));
  expect(draw(deriveSeed(7, 'kill-export', 0))).not.toEqual(draw(deriveSeed(8, 'kill-export', 0)));
});
