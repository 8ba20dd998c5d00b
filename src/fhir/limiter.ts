/*
 * IMPORTANT (measured 2026-11-24 on FerretDB 1.24.2 / SQLite, the embedded default): updates are NOT atomic under
 * concurrency. 50 concurrent `updateOne({_id}, {$inc: {n: 1}})` left n = 15; 30 concurrent compare-and-set
 * `updateOne({_id, v: 0}, {$set: {v: 1}})` reported 3 winners; concurrent `$set` of different nested keys of one
 * document lost most of them. What IS atomic there: `insertOne` against a unique _id (exactly one of 30 racing
 * inserts wins) and `deleteOne` (exactly one deleter sees deletedCount 1). So state shared between concurrent
 * writers (rate-limit budgets, leases, progress) must be built on unique inserts/deletes (e.g. one document per
 * granted slot or per writer), never on read-modify-write updates of one shared document.
 */
/**
 * What the FHIR client needs from a rate limiter: wait for a slot before each request (retries included) and
 * learn from the server's answers (X-RateLimit-* headers, 429s). The shared implementation lives in
 * src/limits; tests and tools that need no limit use `unlimited`.
 */
export interface QuotaContext {
  providerId: string;
  baseUrl: string;
  /** The connection the request is for: the limiter shares a quota fairly between connections. */
  connectionId?: string;
}

export interface RequestLimiter {
  acquire(ctx: QuotaContext, signal?: AbortSignal): Promise<void>;
  observe(ctx: QuotaContext, response: { statusCode: number; headers: Record<string, string | string[] | undefined> }): Promise<void>;
}

export const unlimited: RequestLimiter = {
  acquire: async () => {},
  observe: async () => {},
};
