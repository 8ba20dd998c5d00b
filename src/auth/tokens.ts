import { setTimeout as sleep } from 'node:timers/promises';
import type { ConnectionDoc, ConnectionStore } from '../store/connections';
import type { LeaseStore } from '../store/leases';
import { refreshLeaseName } from '../store/leaseNames';
import { AppError, ReauthorizationRequiredError } from '../errors';
import { OAuthError, type SmartAuth } from './smartAuth';
import { safeReport, type FhirObserver } from '../fhir/observer';

/** Refresh this long before the server's expiry, so a token does not run out in the middle of a request. */
const EXPIRY_MARGIN_MS = 60_000;
const LEASE_MS = 30_000;
const LEASE_WAIT_MS = 200;
/**
 * A token read from the database is reused for this long (never past its refresh margin): a sync sends a dozen
 * requests, and reading and decrypting the connection for each was a third of a fleet's database calls. A minute,
 * not a few seconds: connections that share a practice's quota take turns, so one connection's requests come
 * seconds apart (bench:fleet's nothing-changed pass, 10 connections per practice: 5 s reuse still read the
 * connection for most requests). Changes made by this process (refresh, re-authorization needed) take effect at
 * once; those of another process after this long at most, or at the server's first 401, which is never answered
 * from memory. Writes do not rely on it: a deleted connection's writes are refused by ConnectionStore.assertWritable.
 */
const REUSE_MS = 60_000;
const REUSE_MAX_ENTRIES = 50_000;

export interface AccessToken {
  token: string;
  connection: ConnectionDoc;
}

/**
 * Hands out a valid access token for a connection. Tokens are refreshed before they expire and when the server
 * rejects one (401). A lease in MongoDB makes sure that only one process refreshes a connection at a time: refresh
 * tokens are often single-use, and two workers spending the same one would lock the connection out.
 */
export class TokenService {
  constructor(
    private readonly connections: ConnectionStore,
    private readonly auth: SmartAuth,
    private readonly leases: LeaseStore,
    /** Told about each token request (kind `token`) for metrics; never the token itself. */
    private readonly observer?: FhirObserver,
  ) {}

  /** Tokens read lately, per connection (in memory only). */
  private readonly recent = new Map<string, { token: string; connection: ConnectionDoc; until: number }>();

  private remember(doc: ConnectionDoc, token: string, expiresAt: Date | undefined): void {
    const until = Math.min(Date.now() + REUSE_MS, refreshDueAt(expiresAt, doc.updatedAt));
    if (until <= Date.now()) return;
    if (this.recent.size >= REUSE_MAX_ENTRIES) this.recent.clear();
    this.recent.set(doc._id, { token, connection: doc, until });
  }


  /**
   * @param rejected the token the server just refused with 401: refresh unless the stored one is already newer.
   */
  async accessToken(connectionId: string, rejected?: string): Promise<AccessToken> {
    const held = this.recent.get(connectionId);
    if (held && held.until > Date.now() && held.token !== rejected) return { token: held.token, connection: held.connection };
    // Expired, or refused by the server: read (and, if due, refresh) from the database.
    this.recent.delete(connectionId);
    const deadline = Date.now() + LEASE_MS * 2;
    for (;;) {
      const doc = await this.connections.get(connectionId);
      // FhirClient never asks for one; a caller that does has a bug, not a grant to renew.
      if (doc.kind === 'open') throw new AppError('INTERNAL', `Connection ${connectionId} is an open connection (no authorization): it has no access token.`);
      if (doc.status === 'needs_reauthorization') {
        throw new ReauthorizationRequiredError(connectionId, doc.statusReason ?? 'the grant is no longer valid');
      }
      const current = this.connections.openTokens(doc);
      if (current && current.accessToken !== rejected && !expiresSoon(current.expiresAt, doc.updatedAt)) {
        this.remember(doc, current.accessToken, current.expiresAt);
        return { token: current.accessToken, connection: doc };
      }
      const lease = refreshLeaseName(connectionId);
      const owner = await this.leases.tryAcquire(lease, LEASE_MS);
      if (owner) {
        try {
          // Re-read under the lease: another process may have refreshed between our read and the lease.
          const fresh = await this.connections.get(connectionId);
          const tokens = this.connections.openTokens(fresh);
          if (tokens && tokens.accessToken !== rejected && tokens.accessToken !== current?.accessToken && !expiresSoon(tokens.expiresAt, fresh.updatedAt)) {
            return { token: tokens.accessToken, connection: fresh };
          }
          return { token: await this.renew(fresh, tokens?.refreshToken), connection: fresh };
        } finally {
          await this.leases.release(lease, owner);
        }
      }
      // Another process is refreshing: wait for it to store the new token, then use that one.
      if (Date.now() > deadline) throw new Error(`Timed out waiting for another worker to refresh connection ${connectionId}`);
      await sleep(LEASE_WAIT_MS);
    }
  }

  private async renew(doc: ConnectionDoc, refreshToken: string | undefined): Promise<string> {
    const started = Date.now();
    let asked = false;
    // openid-client hides the HTTP status: a refused grant counts as 400, any other failure as no answer.
    const report = (status: number | undefined) => {
      if (!asked) return; // once per request
      asked = false;
      safeReport(this.observer, { providerId: doc.provider, kind: 'token', status, durationMs: Date.now() - started, errorCode: status ? undefined : 'EFAILED' });
    };
    try {
      if (doc.kind === 'backend') {
        asked = true;
        const tokens = await this.auth.backendToken(doc);
        report(200);
        await this.connections.saveTokens(doc._id, tokens);
        return tokens.accessToken;
      }
      if (!refreshToken) {
        const reason = 'the access token expired and the server issued no refresh token (request offline_access)';
        await this.connections.markNeedsReauthorization(doc._id, reason);
        throw new ReauthorizationRequiredError(doc._id, reason);
      }
      asked = true;
      const tokens = await this.auth.refresh(doc, refreshToken);
      report(200);
      await this.connections.saveTokens(doc._id, tokens, tokens.grantedScopes);
      return tokens.accessToken;
    } catch (err) {
      report(err instanceof OAuthError && err.grantRejected ? 400 : undefined);
      if (err instanceof OAuthError && err.grantRejected) {
        const reason = `the token refresh was refused (${err.oauthCode})`;
        await this.connections.markNeedsReauthorization(doc._id, reason);
        throw new ReauthorizationRequiredError(doc._id, reason);
      }
      throw err;
    }
  }
}

/** Within the margin of expiry; short-lived tokens (minutes) get half their lifetime as margin at most. */
function expiresSoon(expiresAt: Date | undefined, obtainedAt: Date): boolean {
  return refreshDueAt(expiresAt, obtainedAt) <= Date.now();
}

/** When a token is due for refresh: its expiry minus the margin (Infinity without an expiry). */
function refreshDueAt(expiresAt: Date | undefined, obtainedAt: Date): number {
  if (!expiresAt) return Infinity;
  const margin = Math.min(EXPIRY_MARGIN_MS, (expiresAt.getTime() - obtainedAt.getTime()) / 2);
  return expiresAt.getTime() - margin;
}
