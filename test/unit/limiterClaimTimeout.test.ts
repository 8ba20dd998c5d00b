import { randomBytes } from 'node:crypto';
import type { Db } from 'mongodb';
import { loadWorkerConfig } from '../../src/config';
import { FhirRequestError } from '../../src/fhir/errors';
import { MongoRateLimiter } from '../../src/limits';
import { ProviderRegistry } from '../../src/providers/registry';

const registry = ProviderRegistry.fromConfig(
  loadWorkerConfig({
    ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    ECLINICALWORKS_CLIENT_ID: 'client',
    ECLINICALWORKS_REDIRECT_URI: 'http://127.0.0.1:3000/api/ehr/callback',
  }),
);

/** A database whose reads of blocks never answer (as a stalled server would); counts the reads. */
function stalledDb(): { db: Db; reads: () => number } {
  let reads = 0;
  const collection = {
    createIndex: async () => 'ok',
    find: () => ({
      toArray: () => {
        reads++;
        return new Promise(() => {});
      },
    }),
  };
  const db = { collection: () => collection, admin: () => ({ command: async () => ({ localTime: new Date() }) }) };
  (collection as { db?: unknown }).db = db;
  return { db: db as unknown as Db, reads: () => reads };
}

describe('MongoRateLimiter: a database call that never answers', () => {
  test('fails the request as retryable after claimTimeoutMs, and the next request of the practice gets its own claim', async () => {
    const { db, reads } = stalledDb();
    const limiter = new MongoRateLimiter(db, registry, { claimTimeoutMs: 100 });
    const ctx = { providerId: 'eclinicalworks', baseUrl: 'https://fhir4.eclinicalworks.com/fhir/r4/abc', connectionId: 'conn_a' };
    const first = limiter.acquire(ctx).catch((e: unknown) => e);
    const err = await first;
    expect(err).toBeInstanceOf(FhirRequestError);
    expect((err as FhirRequestError).code).toBe('FHIR_RATE_LIMITED');
    expect((err as FhirRequestError).retryable).toBe(true);
    expect((err as Error).message).toContain('did not answer a claim for eclinicalworks within 100 ms');
    // Not held behind the stalled claim: a second request (same practice, same connection) reaches the database.
    const second = await limiter.acquire(ctx).catch((e: unknown) => e);
    expect(second).toBeInstanceOf(FhirRequestError);
    expect(reads()).toBe(2);
  });
});
