import { MongoBulkWriteError, type Collection, type Db } from 'mongodb';
import type { QuotaContext, RequestLimiter } from '../fhir/limiter';
import { FhirRequestError } from '../fhir/errors';
import type { Quota } from '../providers/schema';
import { normalizeBaseUrl, quotasFor, type ProviderRegistry } from '../providers/registry';
import { TurnQueue } from './turns';
import { COLLECTIONS } from '../store/mongo';
import { upsertRetryingInsertRace } from '../store/writeErrors';
import { debugFor, type Logger } from '../logger';
import { DEFAULT_RETRY_AFTER_MAX_SECONDS, clampNote } from '../fhir/retryAfter';
import {
  CALENDAR_WINDOW_SECONDS,
  DEFAULT_TUNING,
  blockForServerRemaining,
  bucketParams,
  calendarChunk,
  firstFreeSlot,
  lateSendBound,
  leadCapMs,
  planObserve,
  slotSendTime,
  windowBucketParams,
  type BucketParams,
  type LimiterTuning,
} from './math';

/**
 * The shared rate limiter: every process (workers, API) that talks to a provider takes its requests from the same
 * quotas, kept in MongoDB. See math.ts for the arithmetic.
 *
 * Only inserts are relied on for atomicity. FerretDB 1.x with its SQLite backend runs an update as a read followed
 * by a write without a transaction (FerretDB/FerretDB#3040): measured here, 400 concurrent `$inc`s on one document
 * left 31, and a compare-and-set on a version field let 400 of 400 writers "win" with the version ending at 69. A
 * unique `_id` insert, on the other hand, is decided by SQLite's primary key. So:
 *   - token bucket (and a short fixed window, kept as a burst-1 bucket): one ticket document per claimed time slot
 *     (`rate_limit_slots`, `_id = key|slot`); claiming = inserting; the slot says when the request may go;
 *   - calendar window (a day): one ticket per chunk of requests per window (`_id = key|window|chunk`);
 *   - blocks after a 429 / Remaining: 0: `rate_limits` documents (`_id = key`) raised with `$max`. Two blocks written
 *     in the same few milliseconds could lose one (both come from the same server and say nearly the same).
 * No transactions, change streams, TTL indexes or pipeline updates; old tickets are deleted by whoever passes by.
 *
 * Why not a library: rate-limiter-flexible's Mongo store counts points with `$inc` upserts (lost on FerretDB, as
 * above), expects a TTL index (FerretDB 1.x has none), has no token bucket with burst across processes, and answers
 * "refused, retry in N ms", so that callers poll.
 *
 * Cost per acquire: concurrent callers in one process are served together (one batch per set of quotas): one read
 * of the block documents and one `insertMany` of slot tickets per bucket, plus one insert per chunk of a calendar
 * window. A slot taken by another process shows up as a duplicate key and the next one is tried.
 *
 * Fair within a practice: slots alone are first come, first served, so a connection with 12 requests in flight
 * would hold 12 places in its practice's queue for every 1 of a connection with one, and take 12/13 of the
 * quota. With `fairness: 'connection'` (the default) a connection holds at most one place in the queue of a set
 * of quotas per process: its next request claims a slot only once its previous one was sent (`TurnQueue`). The
 * shared queue then holds at most one request of each running connection (per process it runs in), so it serves
 * them in turn: each of A running connections gets about 1/A of the quota, and one that asks for less (a small
 * connection between pages) gets all it asks for. It costs nothing when a connection is alone: a slot's send time
 * comes from the bucket, so the next claim still finds the bucket's burst, and claims take a few ms where slots
 * are 1/rate apart. Across processes it holds per process: a connection running in P processes holds up to P places.
 *
 * Late sends: a slot's time is chosen before the database answers its claim. Under load (bench:fleet at 1,000
 * connections saw claims answered seconds late) a request would then go late, together with the on-time requests
 * of later slots, more at once than the server's bucket holds (429). So a request sent later than its slot's bound
 * (lateSendBound: half of what the burst reserve absorbs) leaves that slot unused and claims another; after that,
 * the practice's slots are claimed ahead of now by about that lateness, at most its burst window, or 4 intervals
 * for a sliding window (leadCapMs; less with each slot sent in time), so that the next answer comes in time. (The new claim counts again against a daily cap: rare, and on the safe side.)
 *
 * Clock: slots are in the database's time; the offset between this process's clock and the server's is measured
 * with `hello.localTime` at start and every minute, so processes with skewed clocks still agree.
 */
export interface QuotaBudget {
  name: string;
  kind: Quota['kind'];
  /** Who shares it: `provider` or the FHIR base URL. */
  shareBy: Quota['shareBy'];
  key: string;
  limit: number;
  used: number;
  remaining: number;
  /** Token bucket: when it is full again; window: when what is counted now has left it. ISO 8601. */
  resetAt: string;
  /** Set while a 429 (or X-RateLimit-Remaining: 0) blocks the quota. */
  blockedUntil?: string;
}

export interface RateBudgetReader {
  budget(providerId: string, baseUrl?: string): Promise<QuotaBudget[]>;
}

/** The blocks that hold a provider's requests now, and lifting them (operator API). */
export interface RateLimitBlockAdmin {
  listBlocks(providerId: string): Promise<RateLimitBlock[]>;
  liftBlocks(providerId: string, filter?: { quota?: string; scope?: string }): Promise<{ lifted: string[] }>;
}

export interface MongoRateLimiterOptions {
  tuning?: Partial<LimiterTuning>;
  /** A wait longer than this fails the request (retryable FHIR_RATE_LIMITED) instead of holding it. RATE_LIMIT_MAX_WAIT_SECONDS; default 120 s. */
  maxWaitMs?: number;
  /**
   * No block (429 Retry-After, X-RateLimit-Reset) lasts longer than this from when it was written, whatever the
   * server said; blocks already stored longer (written before this bound existed) end this long after their
   * `updatedAt`. RETRY_AFTER_MAX_SECONDS; default 600 s.
   */
  maxBlockMs?: number;
  /** Where clamped Retry-After values are reported (warn; provider, quota key and the header value only). */
  logger?: Pick<Logger, 'warn'>;
  /**
   * 'connection' (default): a quota is shared in turn between the connections that use it (one place in its
   * queue per connection and process); 'fifo': first come, first served (a connection with more requests in
   * flight takes more of it).
   */
  fairness?: 'connection' | 'fifo';
  /** A claim (the database calls that take slots) that takes longer fails the request as retryable. Default 15 s. */
  claimTimeoutMs?: number;
}

/** What the operator API shows per stored block. */
export interface RateLimitBlock {
  key: string;
  quota: string;
  scope: string;
  blockedUntil: string;
  updatedAt?: string;
}

export const SLOTS_COLLECTION = COLLECTIONS.rateLimitSlots;

interface BlockDoc {
  _id: string;
  provider: string;
  quota: string;
  kind: Quota['kind'];
  scope: string;
  blockedUntil: number;
  updatedAt: Date;
}

interface TicketDoc {
  _id: string;
  /** Quota key. */
  q: string;
  /** Bucket: slot index. Calendar window: window index. */
  k: number;
  /** Calendar window: chunk index and its size. */
  chunk?: number;
  size?: number;
  /** Provider and scope, for the budget of quotas shared by base URL. */
  provider: string;
  quota: string;
  scope: string;
  createdAt: Date;
}

interface Resolved {
  quota: Quota;
  key: string;
  scope: string;
  providerId: string;
  /** Token bucket, or a sliding window as a burst-1 bucket. */
  bucket?: BucketParams;
  /** Calendar window. */
  calendar?: { windowMs: number; limit: number; chunk: number };
}

/** When a claimed request may go, and the latest it may go before its slot is stale (see lateSendBound). */
interface SlotTime {
  sendAt: number;
  lateAfter: number;
}

interface CalendarState {
  window: number;
  nextChunk: number;
  left: number;
}

const CLOCK_REFRESH_MS = 60_000;
const CLEANUP_EVERY_MS = 30_000;
const DUPLICATE_KEY = 11000;
/** A request whose slots keep going stale (the database answers slower than the quota's tolerance) fails after this many claims. */
const MAX_STALE_CLAIMS = 8;
/** A bucket key counts as contended (another process claims its slots too) this long after a claim lost a slot. */
const CONTENTION_MEMORY_MS = 10_000;
/** Spare slots kept per bucket key, at most (see `spares`). */
const MAX_SPARES = 4;

export class MongoRateLimiter implements RequestLimiter, RateBudgetReader, RateLimitBlockAdmin {
  private readonly blocks: Collection<BlockDoc>;
  private readonly tickets: Collection<TicketDoc>;
  private readonly tuning: LimiterTuning;
  private readonly maxWaitMs: number;
  private readonly maxBlockMs: number;
  private readonly logger?: Pick<Logger, 'warn'>;
  /** Next slot worth trying per bucket key (slots below it are taken or in the past). */
  private readonly hints = new Map<string, number>();
  /**
   * Slots claimed one ahead while another process claims the same key's slots too, per bucket key (ascending).
   * Two processes sharing a practice claim its next free slot in turn: each one's hint is behind the other's last
   * claim, so a claim lost one insert before it won one (bench:fleet, nothing-changed pass: half the slot inserts
   * refused). A contended claim inserts one slot more; the next request of this process takes it without a database
   * call. A spare whose time has passed, or which a block written since covers, is dropped unused: a slot of the
   * quota goes unspent, never one more than the quota.
   */
  private readonly spares = new Map<string, number[]>();
  /** Until when a bucket key counts as contended (a claim of this process lost a slot to another). */
  private readonly contendedUntil = new Map<string, number>();
  private readonly calendars = new Map<string, CalendarState>();
  private readonly cleanedAt = new Map<string, number>();
  private readonly batches = new KeyedBatcher();
  private readonly turns = new TurnQueue();
  private readonly fairness: 'connection' | 'fifo';
  private readonly claimTimeoutMs: number;
  /**
   * Per bucket key, how far ahead of now its slots are claimed: raised when a slot came back stale (by more than it
   * was late), lowered with every slot sent in time, absent while claims are answered in time. Never more than
   * leadCapMs: a bucket's burst window (tau; claimed that far ahead, a slot still lets its request go at once when
   * the bucket is idle), or 4 intervals for a sliding window, which has no burst window (bench:fleet at 1,000
   * connections: a lead of seconds, shared by every practice, held requests back and cut quota use by half; with
   * no lead at all, its 250/min practices failed requests after 8 stale claims in a row).
   */
  private readonly leads = new Map<string, number>();
  /** Slots found stale (sent too late to be safe) and claimed again since start, per provider (metrics). */
  private readonly stale = new Map<string, number>();
  private offsetMs = 0;
  private offsetCheckedAt = -Infinity;
  private offsetPending?: Promise<void>;
  private indexes?: Promise<unknown>;

  constructor(
    db: Db,
    private readonly registry: ProviderRegistry,
    opts: MongoRateLimiterOptions = {},
  ) {
    this.blocks = db.collection<BlockDoc>(COLLECTIONS.rateLimits);
    this.tickets = db.collection<TicketDoc>(SLOTS_COLLECTION);
    this.tuning = { ...DEFAULT_TUNING, ...opts.tuning };
    this.maxWaitMs = opts.maxWaitMs ?? 120_000;
    this.maxBlockMs = opts.maxBlockMs ?? DEFAULT_RETRY_AFTER_MAX_SECONDS * 1000;
    this.logger = opts.logger;
    this.fairness = opts.fairness ?? 'connection';
    this.claimTimeoutMs = opts.claimTimeoutMs ?? 15_000;
  }

  /** Slots found stale and claimed again since start, in all. */
  get staleSlots(): number {
    let n = 0;
    for (const v of this.stale.values()) n += v;
    return n;
  }

  /** Slots found stale and claimed again since start, per provider (ehr_sync_rate_limit_stale_slots_total). */
  staleSlotsByProvider(): ReadonlyMap<string, number> {
    return this.stale;
  }

  /** The end of a stored block, never more than maxBlockMs after it was written (older, unbounded blocks too). */
  private effectiveUntil(b: Pick<BlockDoc, 'blockedUntil' | 'updatedAt'>): number {
    const written = b.updatedAt instanceof Date ? b.updatedAt.getTime() + this.offsetMs : -Infinity;
    const bound = Number.isFinite(written) ? written + this.maxBlockMs : Infinity;
    const until = Number.isFinite(b.blockedUntil) ? b.blockedUntil : 0;
    return Math.min(until, bound);
  }

  async acquire(ctx: QuotaContext, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    const quotas = this.resolve(ctx);
    if (quotas.length === 0) return;
    this.indexes ??= this.tickets.createIndex({ q: 1, k: 1 }).catch(() => undefined);
    const batchKey = quotas.map((q) => q.key).join('\n');
    // The connection's turn ends when this request may be sent (its place in the queue is used), or on failure.
    const release = this.fairness === 'connection' && ctx.connectionId ? await this.turns.take(`${batchKey}\n${ctx.connectionId}`, signal) : undefined;
    try {
      await this.waitForSlot(ctx, quotas, batchKey, signal);
    } finally {
      release?.();
    }
  }

  private async waitForSlot(ctx: QuotaContext, quotas: Resolved[], batchKey: string, signal?: AbortSignal): Promise<void> {
    for (let claims = 1; ; claims++) {
      // Bounded: the batcher serves one claim per quota set at a time, so one database call that never answers would
      // otherwise hold every later request of the practice in this process until the step's heartbeat timeout.
      const slot = await this.batches.run(batchKey, (n) => withTimeout(this.claim(quotas, n), this.claimTimeoutMs, () => new FhirRequestError(
        'FHIR_RATE_LIMITED',
        `The shared rate limiter's database did not answer a claim for ${ctx.providerId} within ${this.claimTimeoutMs} ms. The step will be retried.`,
        429,
        true,
      )));
      let now = await this.now();
      const ms = slot.sendAt - now;
      if (ms > this.maxWaitMs) {
        throw new FhirRequestError(
          'FHIR_RATE_LIMITED',
          `The ${ctx.providerId} rate limit would hold this request for ${Math.ceil(ms / 1000)} s (more than ${Math.round(this.maxWaitMs / 1000)} s). The step will be retried later.`,
          429,
          true,
        );
      }
      if (ms > 0 && now <= slot.lateAfter) {
        if (ms >= 250) debugFor(ctx.providerId, 'limiter')('waiting %d ms (%s)', Math.round(ms), quotas.map((q) => q.quota.name).join(', '));
        await sleep(ms, signal);
        now = await this.now();
      }
      if (now <= slot.lateAfter) {
        for (const r of quotas) {
          const lead = this.leads.get(r.key);
          if (lead === undefined) continue;
          if (lead < 5) this.leads.delete(r.key);
          else this.leads.set(r.key, lead * 0.8);
        }
        return;
      }
      // Too late to be safe (a slow claim answer, or a late wake-up): sent now, it would bunch with the on-time sends
      // of later slots and could pass the server's bucket. The slot is left unused and another one is claimed.
      const lateBy = now - slot.lateAfter;
      this.stale.set(ctx.providerId, (this.stale.get(ctx.providerId) ?? 0) + 1);
      for (const r of quotas) {
        if (!r.bucket) continue;
        // Added to the lead: the stale slot was already claimed that far ahead.
        this.leads.set(r.key, Math.min(leadCapMs(r.bucket), (this.leads.get(r.key) ?? 0) + lateBy * 1.5));
      }
      debugFor(ctx.providerId, 'limiter')('slot stale by %d ms: claiming another (%d)', Math.round(lateBy), claims);
      if (claims >= MAX_STALE_CLAIMS) {
        throw new FhirRequestError(
          'FHIR_RATE_LIMITED',
          `The shared rate limiter's database answered ${claims} claims for ${ctx.providerId} too late to send on time (the last by ${Math.round(lateBy)} ms). The step will be retried.`,
          429,
          true,
        );
      }
    }
  }

  async observe(ctx: QuotaContext, response: { statusCode: number; headers: Record<string, string | string[] | undefined> }): Promise<void> {
    const quotas = this.resolve(ctx);
    if (quotas.length === 0) return;
    const now = await this.now();
    const actions = planObserve(quotas.map((q) => q.quota), response.statusCode, response.headers, now, this.maxBlockMs);
    if (actions.length === 0) return;
    const log = debugFor(ctx.providerId, 'limiter');
    // The server counted the request when it arrived: got's timings say when it was sent.
    const sentLocal = (response as { timings?: { upload?: number } }).timings?.upload;
    const sentAt = sentLocal !== undefined ? Math.min(now, sentLocal + this.offsetMs) : now;
    await Promise.all(
      actions.map(async (a) => {
        const r = quotas[a.index]!;
        if (a.retryAfterClamped) {
          this.logger?.warn({ fhirProvider: ctx.providerId, quotaKey: r.key, retryAfter: a.retryAfterClamped.raw, maxSeconds: Math.round(this.maxBlockMs / 1000) }, `rate-limit block clamped: ${clampNote(a.retryAfterClamped, this.maxBlockMs)}`);
        }
        let until = a.blockUntil;
        // No X-RateLimit-Reset to say when the server's window ends: a whole window is the safe guess.
        if (a.untilWindowClear && r.quota.kind === 'fixed-window') until = Math.max(until ?? now, now + r.quota.windowSeconds * 1000);
        if (a.serverRemaining !== undefined && r.bucket && r.quota.kind === 'token-bucket') {
          const low = blockForServerRemaining(a.serverRemaining, sentAt, r.bucket);
          if (low !== undefined) until = Math.max(until ?? low, low);
        }
        if (until === undefined || until <= now) return;
        if (response.statusCode === 429 || until - now >= 1000) log('%s: %d -> hold %d ms', r.key, response.statusCode, Math.round(until - now));
        await this.block(r, until);
      }),
    );
  }

  /** Used and remaining per quota key of a provider (and base URL: quotas shared by base URL need one). */
  async budget(providerId: string, baseUrl?: string): Promise<QuotaBudget[]> {
    const provider = this.registry.get(providerId);
    const now = await this.now();
    const out: QuotaBudget[] = [];
    for (const quota of quotasFor(provider, baseUrl)) {
      let scopes: string[];
      if (quota.shareBy === 'provider') scopes = [providerId];
      else if (baseUrl) scopes = [normalizeBaseUrl(baseUrl)];
      else {
        const seen = (await this.tickets.distinct('scope', { provider: providerId, quota: quota.name })) as string[];
        scopes = seen.length > 0 ? seen.sort() : [normalizeBaseUrl(provider.endpoints.default)];
      }
      for (const scope of scopes) {
        const r = this.resolveOne(providerId, scope, quota);
        const block = await this.blocks.findOne({ _id: r.key });
        const blockedUntil = block && this.effectiveUntil(block) > now ? new Date(this.effectiveUntil(block)).toISOString() : undefined;
        const base = { name: quota.name, kind: quota.kind, shareBy: quota.shareBy, key: r.key, blockedUntil };
        if (r.calendar) {
          const window = Math.floor(now / r.calendar.windowMs);
          const chunks = await this.tickets.find({ q: r.key, k: window }).toArray();
          const used = Math.min(r.calendar.limit, chunks.reduce((sum, c) => sum + (c.size ?? 0), 0));
          out.push({ ...base, limit: r.calendar.limit, used, remaining: r.calendar.limit - used, resetAt: new Date((window + 1) * r.calendar.windowMs).toISOString() });
        } else if (r.bucket) {
          const p = r.bucket;
          if (quota.kind === 'token-bucket') {
            // Slots claimed from now on are the tokens already spoken for.
            const ahead = await this.tickets.countDocuments({ q: r.key, k: { $gte: Math.ceil(now / p.intervalMs) } });
            const remaining = Math.max(0, p.serverBurst - ahead);
            out.push({ ...base, limit: p.serverBurst, used: p.serverBurst - remaining, remaining, resetAt: new Date(now + ahead * p.intervalMs).toISOString() });
          } else {
            const windowMs = quota.windowSeconds * 1000;
            const recent = await this.tickets.find({ q: r.key, k: { $gt: Math.floor((now - windowMs) / p.intervalMs) } }).toArray();
            const used = Math.min(p.serverBurst, recent.length);
            const last = recent.reduce((m, t) => Math.max(m, t.k), -Infinity);
            const resetAt = recent.length ? last * p.intervalMs + windowMs : now;
            out.push({ ...base, limit: p.serverBurst, used, remaining: p.serverBurst - used, resetAt: new Date(resetAt).toISOString() });
          }
        }
      }
    }
    return out;
  }

  /** The stored blocks of a provider that still hold (bounded as the limiter honours them), per quota key. */
  async listBlocks(providerId: string): Promise<RateLimitBlock[]> {
    this.registry.get(providerId);
    const now = await this.now();
    const docs = await this.blocks.find({ provider: providerId }).toArray();
    return docs
      .filter((b) => this.effectiveUntil(b) > now)
      .sort((a, b) => a._id.localeCompare(b._id))
      .map((b) => ({ key: b._id, quota: b.quota, scope: b.scope, blockedUntil: new Date(this.effectiveUntil(b)).toISOString(), ...(b.updatedAt instanceof Date ? { updatedAt: b.updatedAt.toISOString() } : {}) }));
  }

  /**
   * Lifts a provider's blocks (all, or one quota name, or one scope = base URL): deletes the block documents, so
   * every process sends again at once (slots already claimed keep their times). Idempotent: lifting nothing is 0.
   */
  async liftBlocks(providerId: string, filter: { quota?: string; scope?: string } = {}): Promise<{ lifted: string[] }> {
    this.registry.get(providerId);
    const docs = await this.blocks.find({ provider: providerId }).toArray();
    const chosen = docs.filter((b) => (!filter.quota || b.quota === filter.quota) && (!filter.scope || b.scope === normalizeBaseUrl(filter.scope) || b.scope === filter.scope));
    const now = await this.now();
    const lifted: string[] = [];
    for (const b of chosen) {
      const res = await this.blocks.deleteOne({ _id: b._id });
      // Expired block documents are deleted too (tidy), but only blocks that still held count as lifted.
      if (res.deletedCount === 1 && this.effectiveUntil(b) > now) lifted.push(b._id);
    }
    return { lifted: lifted.sort() };
  }

  // --- quotas and keys ---

  private resolve(ctx: QuotaContext): Resolved[] {
    const provider = this.registry.get(ctx.providerId);
    return quotasFor(provider, ctx.baseUrl).map((q) => this.resolveOne(ctx.providerId, q.shareBy === 'provider' ? ctx.providerId : normalizeBaseUrl(ctx.baseUrl), q));
  }

  private resolveOne(providerId: string, scope: string, quota: Quota): Resolved {
    const key = `${providerId}|${quota.name}|${scope}`;
    const base = { quota, key, scope, providerId };
    if (quota.kind === 'token-bucket') return { ...base, bucket: bucketParams(quota, this.tuning) };
    if (quota.windowSeconds > CALENDAR_WINDOW_SECONDS) {
      return { ...base, calendar: { windowMs: quota.windowSeconds * 1000, limit: quota.limit, chunk: calendarChunk(quota.limit) } };
    }
    return { ...base, bucket: windowBucketParams(quota, this.tuning) };
  }

  // --- claiming ---

  /** Claims `n` requests on every quota; returns when each may be sent, and until when. */
  private async claim(quotas: Resolved[], n: number): Promise<SlotTime[]> {
    const now = await this.now();
    const blocked = new Map((await this.blocks.find({ _id: { $in: quotas.map((q) => q.key) } }).toArray()).map((b) => [b._id, this.effectiveUntil(b)]));
    const times: SlotTime[] = Array.from({ length: n }, () => ({ sendAt: now, lateAfter: Infinity }));
    // Calendar windows first: their chunks do not depend on the time, and each bucket slot claimed after them is
    // answered sooner after its time was chosen (a slow answer makes it late).
    for (const r of [...quotas].sort((a, b) => Number(!!b.calendar) - Number(!!a.calendar))) {
      const until = blocked.get(r.key) ?? 0;
      const t = r.calendar ? (await this.claimCalendar(r, n, Math.max(now, until))).map((sendAt) => ({ sendAt, lateAfter: Infinity })) : await this.claimSlots(r, n, until);
      t.forEach((v, i) => {
        times[i]!.sendAt = Math.max(times[i]!.sendAt, v.sendAt);
        times[i]!.lateAfter = Math.min(times[i]!.lateAfter, v.lateAfter);
      });
    }
    return times;
  }

  /**
   * Claims `n` slot tickets of a bucket (one insertMany per round; slots others hold are skipped), from the key's
   * lead ahead of now, so that after a stale slot the next answer comes before the slots' time.
   */
  private async claimSlots(r: Resolved, n: number, blockedUntil: number): Promise<SlotTime[]> {
    const p = r.bucket!;
    const out: SlotTime[] = this.takeSpares(r, n, blockedUntil, await this.now());
    for (let round = 0; out.length < n; round++) {
      const now = await this.now();
      const from = Math.max(firstFreeSlot(now + (this.leads.get(r.key) ?? 0), blockedUntil, p), this.hints.get(r.key) ?? -Infinity);
      const want = n - out.length;
      const spare = (this.contendedUntil.get(r.key) ?? -Infinity) > now ? 1 : 0;
      const ks = Array.from({ length: want + spare }, (_, i) => from + i);
      const won = await this.insertTickets(ks.map((k) => this.ticket(r, `${r.key}|${k}`, k)));
      if (won.length < ks.length) this.contendedUntil.set(r.key, now + CONTENTION_MEMORY_MS);
      this.hints.set(r.key, from + ks.length);
      // Won indexes ascend: the earliest slots serve this claim, a later one is kept as the spare.
      for (const i of won) {
        if (out.length < n) out.push({ sendAt: slotSendTime(ks[i]!, now, p), lateAfter: lateSendBound(ks[i]!, p) });
        else this.keepSpare(r.key, ks[i]!);
      }
      if (round > 1000) throw new Error(`rate limiter: could not claim a slot of ${r.key}`);
    }
    this.cleanup(r, Math.floor((await this.now()) / p.intervalMs) - Math.ceil((r.quota.kind === 'fixed-window' ? r.quota.windowSeconds * 1000 : 0) / p.intervalMs) - 10);
    return out.sort((a, b) => a.sendAt - b.sendAt);
  }

  /** Spare slots of this key still ahead of now and after any block, up to `n` (the others are dropped). */
  private takeSpares(r: Resolved, n: number, blockedUntil: number, now: number): SlotTime[] {
    const kept = this.spares.get(r.key);
    if (!kept) return [];
    const p = r.bucket!;
    const first = firstFreeSlot(now, blockedUntil, p);
    const out: SlotTime[] = [];
    while (kept.length > 0 && out.length < n) {
      const k = kept.shift()!;
      // Its time still to come (so not stale by the time it is used) and not covered by a block read just now.
      if (k >= first && k * p.intervalMs - p.tauMs >= now) out.push({ sendAt: slotSendTime(k, now, p), lateAfter: lateSendBound(k, p) });
    }
    if (kept.length === 0) this.spares.delete(r.key);
    return out;
  }

  private keepSpare(key: string, k: number): void {
    const kept = this.spares.get(key) ?? [];
    kept.push(k);
    kept.sort((a, b) => a - b);
    if (kept.length > MAX_SPARES) kept.shift();
    this.spares.set(key, kept);
  }

  /** Takes `n` requests from a calendar window, claiming chunk tickets as needed; returns when each may go. */
  private async claimCalendar(r: Resolved, n: number, from: number): Promise<number[]> {
    const c = r.calendar!;
    const chunks = Math.ceil(c.limit / c.chunk);
    const out: number[] = [];
    let window = Math.floor(from / c.windowMs);
    while (out.length < n) {
      const st = this.calendars.get(r.key);
      if (st && st.window === window && st.left > 0) {
        const take = Math.min(st.left, n - out.length);
        st.left -= take;
        for (let i = 0; i < take; i++) out.push(Math.max(from, window * c.windowMs));
        continue;
      }
      const state: CalendarState = st && st.window === window ? st : { window, nextChunk: 0, left: 0 };
      this.calendars.set(r.key, state);
      if (state.nextChunk >= chunks) {
        window++; // this window is used up: the next one
        continue;
      }
      const chunk = state.nextChunk++;
      const size = Math.min(c.chunk, c.limit - chunk * c.chunk);
      const won = await this.insertTickets([{ ...this.ticket(r, `${r.key}|${window}|${chunk}`, window), chunk, size }]);
      if (won.length) state.left += size;
    }
    this.cleanup(r, Math.floor(from / c.windowMs) - 1);
    return out;
  }

  private ticket(r: Resolved, id: string, k: number): TicketDoc {
    return { _id: id, q: r.key, k, provider: r.providerId, quota: r.quota.name, scope: r.scope, createdAt: new Date() };
  }

  /** Inserts tickets; returns the indexes of those this call won (the others already existed). */
  private async insertTickets(docs: TicketDoc[]): Promise<number[]> {
    try {
      await this.tickets.insertMany(docs, { ordered: false });
      return docs.map((_d, i) => i);
    } catch (err) {
      if (!(err instanceof MongoBulkWriteError)) throw err;
      const errors = Array.isArray(err.writeErrors) ? err.writeErrors : [err.writeErrors];
      if (errors.some((e) => e.code !== DUPLICATE_KEY)) throw err;
      const lost = new Set(errors.map((e) => e.index));
      return docs.map((_d, i) => i).filter((i) => !lost.has(i));
    }
  }

  /** Deletes tickets that can no longer matter (at most every 30 s per key and process; errors ignored). */
  private cleanup(r: Resolved, belowK: number): void {
    const now = Date.now();
    if (now - (this.cleanedAt.get(r.key) ?? 0) < CLEANUP_EVERY_MS) return;
    this.cleanedAt.set(r.key, now);
    void this.tickets.deleteMany({ q: r.key, k: { $lt: belowK } }).catch(() => undefined);
  }

  private async block(r: Resolved, until: number): Promise<void> {
    // The one place blocks are written: bounded here whatever computed them.
    const bounded = Math.min(until, (await this.now()) + this.maxBlockMs);
    // Responses of one quota arrive together (a burst of 429s, or headers saying the server's budget is low): their
    // first blocks race to insert the document.
    await upsertRetryingInsertRace(() =>
      this.blocks.updateOne(
        { _id: r.key },
        { $max: { blockedUntil: bounded }, $set: { updatedAt: new Date() }, $setOnInsert: { provider: r.providerId, quota: r.quota.name, kind: r.quota.kind, scope: r.scope } },
        { upsert: true },
      ),
    );
  }

  // --- time ---

  /** Database time: this process's clock plus the measured offset (refreshed in the background). */
  private async now(): Promise<number> {
    const local = Date.now();
    if (local - this.offsetCheckedAt > CLOCK_REFRESH_MS) {
      this.offsetPending ??= this.measureOffset().finally(() => (this.offsetPending = undefined));
      // Block only the very first time; later refreshes run in the background.
      if (this.offsetCheckedAt === -Infinity) await this.offsetPending;
    }
    return Date.now() + this.offsetMs;
  }

  private async measureOffset(): Promise<void> {
    try {
      const t0 = Date.now();
      const hello = (await this.blocks.db.admin().command({ hello: 1 })) as { localTime?: Date };
      const t1 = Date.now();
      if (hello.localTime instanceof Date) this.offsetMs = hello.localTime.getTime() - (t0 + t1) / 2;
    } catch {
      /* keep the last offset (0 at first): the server's clock is a refinement, not a requirement */
    }
    this.offsetCheckedAt = Date.now();
  }
}

export interface StaleSlotReader {
  staleSlotsByProvider(): ReadonlyMap<string, number>;
}

export function isStaleSlotReader(x: unknown): x is StaleSlotReader {
  return typeof (x as StaleSlotReader | undefined)?.staleSlotsByProvider === 'function';
}

export function isRateBudgetReader(x: unknown): x is RateBudgetReader {
  return typeof (x as RateBudgetReader | undefined)?.budget === 'function';
}

/** The promise's outcome, or `error()` after `ms` (the promise itself goes on; its outcome is then dropped). */
function withTimeout<T>(p: Promise<T>, ms: number, error: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(error()), ms);
  });
  p.catch(() => undefined);
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** setTimeout that an AbortSignal cuts short (rejecting with the signal's reason). */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Runs at most one operation per key at a time; callers that arrive meanwhile are served together by the next one
 * (`exec(n)` returns one result per caller, in order). Fewer concurrent writers also keep FerretDB's tail latency
 * (and so late sends) down.
 */
class KeyedBatcher {
  private readonly queues = new Map<string, Array<{ resolve: (v: never) => void; reject: (e: unknown) => void; exec: (n: number) => Promise<unknown[]> }>>();
  private readonly running = new Set<string>();

  run<T>(key: string, exec: (n: number) => Promise<T[]>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const q = this.queues.get(key) ?? [];
      q.push({ resolve: resolve as (v: never) => void, reject, exec });
      this.queues.set(key, q);
      if (!this.running.has(key)) void this.drain(key);
    });
  }

  private async drain(key: string): Promise<void> {
    this.running.add(key);
    try {
      for (;;) {
        const batch = this.queues.get(key) ?? [];
        this.queues.delete(key);
        if (batch.length === 0) return;
        try {
          const results = await batch[0]!.exec(batch.length);
          batch.forEach((c, i) => c.resolve(results[i] as never));
        } catch (err) {
          for (const c of batch) c.reject(err);
        }
      }
    } finally {
      this.running.delete(key);
    }
  }
}
