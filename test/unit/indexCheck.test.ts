import { checkServerVersion, judgeCountPlan, judgePlan, judgeProjectedPlan, StoreNotIndexedError } from '../../src/store/indexCheck';

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

describe('judgeCountPlan: a count is indexed, and on FerretDB counted by SQLite itself', () => {
  const search = ['id=4 parent=0 notused=0 detail=SEARCH r_1 USING INDEX r_1_connectionId_1 (<expr>=?)'];

  it('MongoDB: an aggregation whose first stage ($cursor) scans an index is indexed, a collection scan is not', () => {
    const cursor = (stage: string) => ({ stages: [{ $cursor: { queryPlanner: { winningPlan: { stage: 'PROJECTION_COVERED', inputStage: { stage } } } } }, { $group: {} }] });
    expect(judgeCountPlan(cursor('IXSCAN'), false).indexed).toBe(true);
    expect(judgeCountPlan(cursor('COLLSCAN'), false).indexed).toBe(false);
  });

  it('FerretDB: an indexed plan without ehrsyncCountPushdown (a build without the count patch) is refused, with the reason', () => {
    expect(judgeCountPlan({ queryPlanner: { Plan: search }, ehrsyncCountPushdown: true }, true).indexed).toBe(true);
    const old = judgeCountPlan({ queryPlanner: { Plan: search }, ehrsyncCountPushdown: false }, true);
    expect(old.indexed).toBe(false);
    expect(old.detail).toMatch(/decoding every matching document/);
    expect(judgeCountPlan({ queryPlanner: { Plan: ['id=2 parent=0 notused=0 detail=SCAN r_1'] }, ehrsyncCountPushdown: true }, true).indexed).toBe(false);
  });
});

describe('judgeProjectedPlan: a projected read is indexed, and on FerretDB reads only the projected fields', () => {
  const search = ['id=3 parent=0 notused=0 detail=SEARCH r_1 USING INDEX r_1__id_ (<expr>=?)'];

  it('MongoDB: the plan alone decides', () => {
    expect(judgeProjectedPlan({ queryPlanner: { winningPlan: { stage: 'PROJECTION_SIMPLE', inputStage: { stage: 'FETCH', inputStage: { stage: 'IXSCAN' } } } } }, false).indexed).toBe(true);
    expect(judgeProjectedPlan({ queryPlanner: { winningPlan: { stage: 'PROJECTION_SIMPLE', inputStage: { stage: 'COLLSCAN' } } } }, false).indexed).toBe(false);
  });

  it('FerretDB: an indexed plan without ehrsyncProjectionPushdown (a build without the projection patch) is refused, with the reason', () => {
    expect(judgeProjectedPlan({ queryPlanner: { Plan: search }, ehrsyncProjectionPushdown: true }, true).indexed).toBe(true);
    const old = judgeProjectedPlan({ queryPlanner: { Plan: search } }, true);
    expect(old.indexed).toBe(false);
    expect(old.detail).toMatch(/reads whole documents/);
    expect(judgeProjectedPlan({ queryPlanner: { Plan: ['id=2 parent=0 notused=0 detail=SCAN r_1'] }, ehrsyncProjectionPushdown: true }, true).indexed).toBe(false);
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
