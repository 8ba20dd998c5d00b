import { checkServerVersion, judgePlan, StoreNotIndexedError } from '../../src/store/indexCheck';

describe('judgePlan reads both servers\' explain answers', () => {
  it('MongoDB: an index scan or _id fast path is indexed, a collection scan is not', () => {
    expect(judgePlan({ queryPlanner: { winningPlan: { stage: 'FETCH', inputStage: { stage: 'IXSCAN', indexName: 'a_1' } } } }).indexed).toBe(true);
    expect(judgePlan({ queryPlanner: { winningPlan: { stage: 'IDHACK' } } }).indexed).toBe(true);
    expect(judgePlan({ queryPlanner: { winningPlan: { stage: 'EXPRESS_IXSCAN' } } }).indexed).toBe(true);
    expect(judgePlan({ queryPlanner: { winningPlan: { stage: 'COLLSCAN' } } })).toEqual({ indexed: false, detail: 'COLLSCAN' });
    // MongoDB 7+: the plan sits under queryPlan; an OR with one branch scanning the collection is not indexed.
    expect(judgePlan({ queryPlanner: { winningPlan: { queryPlan: { stage: 'OR', inputStages: [{ stage: 'IXSCAN' }, { stage: 'COLLSCAN' }] } } } }).indexed).toBe(false);
    expect(judgePlan({ queryPlanner: {} }).indexed).toBe(false);
  });

  it('FerretDB/SQLite: SEARCH … USING INDEX is indexed, SCAN is not', () => {
    expect(judgePlan({ queryPlanner: { Plan: ['id=3 parent=0 notused=0 detail=SEARCH r_1 USING INDEX r_1__id_ (<expr>=?)'] } }).indexed).toBe(true);
    expect(judgePlan({ queryPlanner: { Plan: ['id=2 parent=0 notused=0 detail=SCAN r_1'] } }).indexed).toBe(false);
    expect(judgePlan({ queryPlanner: { Plan: [] } }).indexed).toBe(false);
  });
});

describe('checkServerVersion', () => {
  it('accepts MongoDB 4.4 and newer and FerretDB 1.x', () => {
    expect(() => checkServerVersion({ version: '4.4.0', versionArray: [4, 4, 0, 0] })).not.toThrow();
    expect(() => checkServerVersion({ version: '8.0.3', versionArray: [8, 0, 3, 0] })).not.toThrow();
    expect(() => checkServerVersion({ version: '7.0.42', ferretdbVersion: 'v1.24.2' })).not.toThrow();
  });

  it('refuses an older MongoDB and another FerretDB, saying what to do', () => {
    expect(() => checkServerVersion({ version: '4.2.24', versionArray: [4, 2, 24, 0] })).toThrow(StoreNotIndexedError);
    expect(() => checkServerVersion({ version: '4.2.24', versionArray: [4, 2, 24, 0] })).toThrow(/needs MongoDB 4\.4 or newer/);
    expect(() => checkServerVersion({ version: '7.0.77', ferretdbVersion: 'v2.1.0' })).toThrow(/scripts\/setup\.sh/);
  });
});
