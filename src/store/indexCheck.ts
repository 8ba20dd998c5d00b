import type { Db, Document } from 'mongodb';
import { AppError } from '../errors';
import { COLLECTIONS } from './mongo';
import { VERSION_PROJECTION, countByTypePipeline } from './resources';

/**
 * Start-up check that the database answers every hot-path query through an index.
 *
 * Why: an embedded FerretDB built without ehr-sync's pushdown patch (scripts/ferretdb/), or a database where an
 * index is missing, still answers every query correctly, only by scanning the whole collection: re-syncs then run
 * at a few resources per second and nothing says why. So the worker and the API ask the database for the plan of
 * each shape below (explain, which runs nothing) and refuse to start on a full scan, naming the query.
 */
export interface HotPath {
  /** What the service does with this query shape. */
  name: string;
  collection: string;
  filter: Document;
  /**
   * The projection the service reads this shape with, when it reads only a few top-level fields: on FerretDB the
   * plan must then also say that those fields are read without decoding the documents (ehrsyncProjectionPushdown).
   */
  projection?: Document;
}

const X = '~ehr-sync-index-probe~'; // explain only plans the query: nothing is read or written

export const HOT_PATHS: readonly HotPath[] = [
  { name: 'resource lookup by _id', collection: COLLECTIONS.resources, filter: { _id: X } },
  { name: 'stored versions of a batch ($in on _id)', collection: COLLECTIONS.resources, filter: { _id: { $in: [X, `${X}2`] } }, projection: VERSION_PROJECTION },
  {
    name: 'conditional upsert of a resource',
    collection: COLLECTIONS.resources,
    filter: { _id: X, $or: [{ lastUpdated: { $lt: new Date(0) } }, { lastUpdated: new Date(0), versionNum: { $lt: 1 } }] },
  },
  { name: 'stored resources of a connection', collection: COLLECTIONS.resources, filter: { connectionId: X } },
  { name: 'stored resources by connection and type', collection: COLLECTIONS.resources, filter: { connectionId: X, resourceType: 'Observation' } },
  {
    // The date conditions (src/store/fhirSearch/dateSearch.ts) are applied to what the indexed equalities find.
    name: 'stored resources by connection, type, patient and date',
    collection: COLLECTIONS.resources,
    filter: {
      connectionId: X,
      resourceType: 'Communication',
      patientId: X,
      $and: [{ $or: [{ '_norm.sent.e': { $gt: new Date(0) } }, { '_norm.sent.s': { $gte: new Date(0) }, '_norm.sent.e': { $lte: new Date(1) } }] }],
    },
  },
  {
    name: 'stored resources by connection, type and date (no patient)',
    collection: COLLECTIONS.resources,
    filter: { connectionId: X, resourceType: 'Observation', $and: [{ '_norm._lastUpdated.s': { $lt: new Date(0) } }] },
  },
  { name: 'job by id', collection: COLLECTIONS.jobs, filter: { _id: X } },
  { name: 'jobs of a connection', collection: COLLECTIONS.jobs, filter: { connectionId: X, type: 'enhanced-sync' } },
  { name: 'job counts by type and status', collection: COLLECTIONS.jobs, filter: { type: 'enhanced-sync', status: 'IN_PROGRESS' } },
  { name: 'progress of a job', collection: COLLECTIONS.jobProgress, filter: { jobId: X } },
  { name: 'running jobs of a page of connections', collection: COLLECTIONS.jobs, filter: { status: 'IN_PROGRESS', connectionId: { $in: [X, `${X}2`] } } },
  { name: 'job outcomes of a provider\'s connections', collection: COLLECTIONS.connectionHealth, filter: { provider: X } },
  { name: 'job outcome of a connection and type', collection: COLLECTIONS.connectionHealth, filter: { _id: X, $or: [{ 'lastSuccess.at': { $lt: new Date(0) } }, { lastSuccess: { $exists: false } }] } },
  { name: 'progress write of a step', collection: COLLECTIONS.jobProgress, filter: { _id: X } },
  { name: 'sync point advance', collection: COLLECTIONS.syncPoints, filter: { _id: X, since: { $lt: X } } },
  { name: 'rate-limit slots of a quota window', collection: COLLECTIONS.rateLimitSlots, filter: { q: X, k: 1 } },
  { name: 'rate-limit slots ahead of now', collection: COLLECTIONS.rateLimitSlots, filter: { q: X, k: { $gte: 1 } } },
  { name: 'rate-limit blocks', collection: COLLECTIONS.rateLimits, filter: { _id: { $in: [X, `${X}2`] } } },
  { name: 'lease take-over', collection: COLLECTIONS.leases, filter: { _id: X, until: { $lt: new Date(0) } } },
  { name: 'connection by id', collection: COLLECTIONS.connections, filter: { _id: X } },
  { name: 'connections of a provider', collection: COLLECTIONS.connections, filter: { provider: X } },
  { name: 'schedules of a connection', collection: COLLECTIONS.syncSchedules, filter: { connectionId: X } },
  { name: 'OAuth state by id', collection: COLLECTIONS.oauthStates, filter: { _id: X } },
  { name: 'change-feed blocks of a window ($in on _id)', collection: COLLECTIONS.changeBlocks, filter: { _id: { $in: [X, `${X}2`] } } },
  { name: 'change-feed changes of blocks', collection: COLLECTIONS.resources, filter: { chB: { $in: [X, `${X}2`] } } },
  { name: 'change-feed changes of blocks, one connection', collection: COLLECTIONS.resources, filter: { chB: { $in: [X, `${X}2`] }, connectionId: X } },
  { name: 'change-feed restamp of a block', collection: COLLECTIONS.resources, filter: { chB: X } },
  { name: 'change-feed tombstones of blocks', collection: COLLECTIONS.changeTombstones, filter: { chB: { $in: [X, `${X}2`] } } },
  { name: 'change-feed blocks of a scope (retention)', collection: COLLECTIONS.changeBlocks, filter: { s: X } },
  { name: 'change-feed tombstones of a connection', collection: COLLECTIONS.changeTombstones, filter: { connectionId: X } },
];

/** A count the service runs on a hot path (an aggregation of countDocuments' shape, or a count per value of one field). */
export interface CountPath {
  name: string;
  collection: string;
  pipeline: Document[];
}

/** The pipeline the driver's countDocuments(match) sends. */
const countDocumentsPipeline = (match: Document): Document[] => [{ $match: match }, { $group: { _id: 1, n: { $sum: 1 } } }];

export const COUNT_PATHS: readonly CountPath[] = [
  { name: 'stored resources of a connection, counted per type', collection: COLLECTIONS.resources, pipeline: countByTypePipeline({ connectionId: X }) },
  { name: 'stored resources of a patient, counted per type', collection: COLLECTIONS.resources, pipeline: countByTypePipeline({ connectionId: X, patientId: X }) },
  { name: 'stored resources of a connection, counted', collection: COLLECTIONS.resources, pipeline: countDocumentsPipeline({ connectionId: X }) },
  { name: 'job counts by type and status (metrics)', collection: COLLECTIONS.jobs, pipeline: countDocumentsPipeline({ type: 'enhanced-sync', status: 'IN_PROGRESS' }) },
];

export type PlanVerdict = { indexed: true; detail: string } | { indexed: false; detail: string };

/**
 * Reads an explain answer of MongoDB (queryPlanner.winningPlan stages) or of FerretDB's SQLite backend
 * (queryPlanner.Plan: SQLite's EXPLAIN QUERY PLAN lines, "SEARCH t USING INDEX …" or "SCAN t").
 */
export function judgePlan(explain: Document): PlanVerdict {
  // An aggregation's explain on MongoDB may carry the query's plan in its first stage ($cursor).
  const cursorStage = Array.isArray(explain.stages) ? (explain.stages[0] as Document | undefined)?.$cursor : undefined;
  const planner = (explain.queryPlanner ?? (cursorStage as Document | undefined)?.queryPlanner ?? explain) as Document;
  if (Array.isArray(planner.Plan)) {
    const lines = (planner.Plan as unknown[]).map(String);
    const scans = lines.filter((l) => /\bSCAN\b/.test(l) && !/\bUSING\b.*\bINDEX\b|PRIMARY KEY/.test(l));
    const searches = lines.filter((l) => /\bSEARCH\b.*\bUSING\b/.test(l));
    if (scans.length > 0 || searches.length === 0) return { indexed: false, detail: lines.join('; ') || 'empty plan' };
    return { indexed: true, detail: searches.join('; ') };
  }
  const stages: string[] = [];
  const walk = (node: unknown): void => {
    if (!node || typeof node !== 'object') return;
    const n = node as Document;
    if (typeof n.stage === 'string') stages.push(n.stage);
    for (const key of ['inputStage', 'queryPlan']) walk(n[key]);
    if (Array.isArray(n.inputStages)) n.inputStages.forEach(walk);
  };
  walk(planner.winningPlan);
  if (stages.length === 0) return { indexed: false, detail: `no plan in the explain answer: ${JSON.stringify(planner).slice(0, 200)}` };
  const indexed = stages.some((s) => /IXSCAN|IDHACK|COUNT_SCAN|DISTINCT_SCAN/.test(s)) && !stages.includes('COLLSCAN');
  return { indexed, detail: stages.join(' > ') };
}

/**
 * Judges the explain answer of a count: served by an index, and on FerretDB counted by SQLite itself. A FerretDB
 * build without ehr-sync's count patch plans the same indexed query but then decodes (and for countDocuments holds
 * in memory) every document it counts; its explain lacks `ehrsyncCountPushdown`.
 */
export function judgeCountPlan(explain: Document, ferretdb: boolean): PlanVerdict {
  const verdict = judgePlan(explain);
  if (!verdict.indexed || !ferretdb || explain.ehrsyncCountPushdown === true) return verdict;
  return { indexed: false, detail: `counted by decoding every matching document (no ehrsyncCountPushdown; plan: ${verdict.detail})` };
}

/**
 * Judges the explain answer of a projected read: served by an index, and on FerretDB read without decoding whole
 * documents. A FerretDB build without ehr-sync's projection patch plans the same indexed query but decodes every
 * stored resource in full to return two fields of it; its explain lacks `ehrsyncProjectionPushdown`.
 */
export function judgeProjectedPlan(explain: Document, ferretdb: boolean): PlanVerdict {
  const verdict = judgePlan(explain);
  if (!verdict.indexed || !ferretdb || explain.ehrsyncProjectionPushdown === true) return verdict;
  return { indexed: false, detail: `reads whole documents to return a few fields (no ehrsyncProjectionPushdown; plan: ${verdict.detail})` };
}

export class StoreNotIndexedError extends AppError {
  constructor(message: string) {
    super('CONFIG_INVALID', message, { status: 500 });
  }
}

function describeServer(info: Document): string {
  return info.ferretdbVersion ? `FerretDB ${String(info.ferretdbVersion)}` : `MongoDB ${String(info.version ?? '?')}`;
}

/** The oldest MongoDB whose features the service uses everywhere (unique indexes, bulkWrite, $unset, explain). */
export const MIN_MONGODB_VERSION = [4, 4] as const;

/**
 * Refuses a server without what the service needs: a MongoDB older than 4.4, or a FerretDB other than the 1.x
 * SQLite build the setup scripts make (its query pushdown is what keeps lookups indexed).
 */
export function checkServerVersion(info: Document): void {
  if (info.ferretdbVersion) {
    if (!/^v?1\./.test(String(info.ferretdbVersion))) {
      throw new StoreNotIndexedError(
        `The database is FerretDB ${String(info.ferretdbVersion)}; ehr-sync's embedded store is FerretDB 1.24 with its pushdown patch (scripts/ferretdb/). Run "bash scripts/setup.sh", or point MONGODB_URI at MongoDB ${MIN_MONGODB_VERSION.join('.')} or newer.`,
      );
    }
    return;
  }
  const [major = 0, minor = 0] = Array.isArray(info.versionArray) ? (info.versionArray as number[]) : String(info.version ?? '0.0').split('.').map(Number);
  const [needMajor, needMinor] = MIN_MONGODB_VERSION;
  if (major < needMajor || (major === needMajor && minor < needMinor)) {
    throw new StoreNotIndexedError(`The database is MongoDB ${String(info.version)}; ehr-sync needs MongoDB ${MIN_MONGODB_VERSION.join('.')} or newer. Upgrade it, or point MONGODB_URI at a newer server.`);
  }
}

/** The explain answer of a hot path's find, with its projection (planned, not run). */
export async function explainFind(db: Db, p: HotPath): Promise<Document> {
  return db.collection(p.collection).find(p.filter, p.projection ? { projection: p.projection } : {}).explain('queryPlanner');
}

/** The explain answer of a count path's aggregation (planned, not run). */
export async function explainCount(db: Db, p: CountPath): Promise<Document> {
  return db.collection(p.collection).aggregate(p.pipeline).explain('queryPlanner');
}

/** Checks the server version, then explains each hot path and count; throws StoreNotIndexedError naming every shape that would scan its collection. */
export async function verifyIndexedHotPaths(db: Db, paths: readonly HotPath[] = HOT_PATHS, counts: readonly CountPath[] = COUNT_PATHS): Promise<void> {
  const info = (await db.admin().command({ buildInfo: 1 })) as Document;
  checkServerVersion(info);
  const failures: string[] = [];
  for (const p of paths) {
    const explain = await explainFind(db, p);
    const verdict = p.projection ? judgeProjectedPlan(explain, Boolean(info.ferretdbVersion)) : judgePlan(explain);
    if (!verdict.indexed) failures.push(`${p.name} (${p.collection}): ${verdict.detail}`);
  }
  for (const p of counts) {
    const verdict = judgeCountPlan(await explainCount(db, p), Boolean(info.ferretdbVersion));
    if (!verdict.indexed) failures.push(`${p.name} (${p.collection}): ${verdict.detail}`);
  }
  if (failures.length === 0) return;
  const server = describeServer(info);
  const fix = info.ferretdbVersion
    ? 'The embedded FerretDB must be the build with ehr-sync\'s patch (pushdown, counts and projections): run "bash scripts/setup.sh" and then "bash scripts/services.sh restart mongo".'
    : 'Check that the service may create indexes (createIndex) and that no index listed in src/store/mongo.ts INDEXES was dropped.';
  throw new StoreNotIndexedError(
    `The database (${server}) would answer ${failures.length} hot-path ${failures.length === 1 ? 'query' : 'queries'} with a full collection scan, so syncs would slow down as data grows: ${failures.join(' | ')}. ${fix}`,
  );
}
