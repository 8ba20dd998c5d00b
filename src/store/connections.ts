import { randomBytes } from 'node:crypto';
import type { Collection, Db } from 'mongodb';
import type { SecretBox } from '../crypto/secretBox';
import { AppError, NotFoundError } from '../errors';
import { COLLECTIONS } from './mongo';

/** `open`: a FHIR server without authorization (opt-in per provider); no token is ever requested or sent. */
export type ConnectionKind = 'patient' | 'backend' | 'open';
export type ConnectionStatus = 'active' | 'needs_reauthorization';

/** What the database holds. Secrets are sealed with the SecretBox, bound to the connection id. */
export interface ConnectionDoc {
  _id: string;
  provider: string;
  kind: ConnectionKind;
  fhirBaseUrl: string;
  clientId: string;
  patientId?: string;
  scopes: string[];
  status: ConnectionStatus;
  statusReason?: string;
  sealedAccessToken?: string;
  sealedRefreshToken?: string;
  accessTokenExpiresAt?: Date;
  /** Backend services: the private key (JWK JSON), sealed. */
  sealedPrivateKey?: string;
  keyAlg?: 'RS384' | 'ES384';
  keyId?: string;
  /**
   * Set when DELETE of the connection began (src/connections/deleteConnection.ts): the API no longer starts work on
   * it or shows its data, while its running jobs still use its credentials to cancel their exports on the EHR.
   */
  deletingSince?: Date;
  createdAt: Date;
  updatedAt: Date;
}

/** What the API shows: never a token or a key. */
export interface ConnectionView {
  connectionId: string;
  provider: string;
  kind: ConnectionKind;
  fhirEndpoint: string;
  patientId?: string;
  scopes: string[];
  status: ConnectionStatus;
  statusReason?: string;
  tokenExpiresAt?: string;
  /** Set while DELETE of the connection has begun and not finished (repeat DELETE to finish it). */
  deletingSince?: string;
  createdAt: string;
  updatedAt: string;
}

export interface TokenSet {
  accessToken: string;
  refreshToken?: string;
  expiresAt?: Date;
}

export function newConnectionId(): string {
  return `conn_${randomBytes(12).toString('base64url')}`;
}

export class ConnectionStore {
  private readonly col: Collection<ConnectionDoc>;

  constructor(db: Db, private readonly box: SecretBox) {
    this.col = db.collection<ConnectionDoc>(COLLECTIONS.connections);
  }

  async create(doc: Omit<ConnectionDoc, 'createdAt' | 'updatedAt' | 'status'>): Promise<ConnectionDoc> {
    const now = new Date();
    const full: ConnectionDoc = { ...doc, status: 'active', createdAt: now, updatedAt: now };
    await this.col.insertOne(full);
    return full;
  }

  async find(id: string): Promise<ConnectionDoc | null> {
    return this.col.findOne({ _id: id });
  }

  async get(id: string): Promise<ConnectionDoc> {
    const doc = await this.find(id);
    if (!doc) throw new NotFoundError('CONNECTION_NOT_FOUND', `Connection "${id}" does not exist. List connections with GET /api/ehr/connections.`);
    return doc;
  }

  async list(filter: { provider?: string } = {}, limit = 100): Promise<ConnectionDoc[]> {
    return this.col
      .find(filter.provider ? { provider: filter.provider } : {})
      .sort({ createdAt: -1 })
      .limit(limit)
      .toArray();
  }

  /**
   * Refuses to store more data for a connection that is deleted or being deleted. A step of a cancelled job can
   * still be running when its workflow has ended; checked before each write, it cannot re-create data that the
   * delete (which marks the connection first) purges.
   */
  async assertWritable(id: string): Promise<void> {
    const doc = await this.col.findOne({ _id: id }, { projection: { deletingSince: 1 } });
    if (!doc) throw new AppError('CONNECTION_NOT_FOUND', `Connection ${id} was deleted: nothing more is stored for it.`, { status: 404, retryable: false });
    // Its own code: the DELETE cancels the connection's jobs right after marking it, and a sync refused here waits
    // for that cancel (src/workflows/enhancedSync.ts) so that it ends CANCELLED, as the DELETE reports it.
    if (doc.deletingSince) throw new AppError('CONNECTION_DELETING', `Connection ${id} is being deleted: nothing more is stored for it.`, { status: 404, retryable: false });
  }

  /** Marks the connection as being deleted (keeps the first instant when repeated); false when it does not exist. */
  async markDeleting(id: string): Promise<boolean> {
    const res = await this.col.updateOne({ _id: id, deletingSince: { $exists: false } }, { $set: { deletingSince: new Date() } });
    return res.matchedCount === 1 || (await this.col.countDocuments({ _id: id }, { limit: 1 })) === 1;
  }

  sealTokens(connectionId: string, tokens: TokenSet): Pick<ConnectionDoc, 'sealedAccessToken' | 'sealedRefreshToken' | 'accessTokenExpiresAt'> {
    return {
      sealedAccessToken: this.box.seal(tokens.accessToken, `${connectionId}:access`),
      sealedRefreshToken: tokens.refreshToken ? this.box.seal(tokens.refreshToken, `${connectionId}:refresh`) : undefined,
      accessTokenExpiresAt: tokens.expiresAt,
    };
  }

  openTokens(doc: ConnectionDoc): TokenSet | null {
    if (!doc.sealedAccessToken) return null;
    return {
      accessToken: this.box.open(doc.sealedAccessToken, `${doc._id}:access`),
      refreshToken: doc.sealedRefreshToken ? this.box.open(doc.sealedRefreshToken, `${doc._id}:refresh`) : undefined,
      expiresAt: doc.accessTokenExpiresAt,
    };
  }

  sealPrivateKey(connectionId: string, jwkJson: string): string {
    return this.box.seal(jwkJson, `${connectionId}:private-key`);
  }

  openPrivateKey(doc: ConnectionDoc): string {
    if (!doc.sealedPrivateKey) throw new Error(`Connection ${doc._id} has no private key`);
    return this.box.open(doc.sealedPrivateKey, `${doc._id}:private-key`);
  }

  /** Stores new tokens; a refresh that returned no new refresh token keeps the old one. */
  async saveTokens(connectionId: string, tokens: TokenSet, grantedScopes?: string[]): Promise<void> {
    const sealed = this.sealTokens(connectionId, tokens);
    const set: Partial<ConnectionDoc> = {
      sealedAccessToken: sealed.sealedAccessToken,
      accessTokenExpiresAt: sealed.accessTokenExpiresAt,
      status: 'active',
      updatedAt: new Date(),
    };
    if (sealed.sealedRefreshToken) set.sealedRefreshToken = sealed.sealedRefreshToken;
    if (grantedScopes?.length) set.scopes = grantedScopes;
    await this.col.updateOne({ _id: connectionId }, { $set: set, $unset: { statusReason: '' } });
  }

  async markNeedsReauthorization(connectionId: string, reason: string): Promise<void> {
    await this.col.updateOne(
      { _id: connectionId },
      { $set: { status: 'needs_reauthorization', statusReason: reason, updatedAt: new Date() } },
    );
  }

  static view(doc: ConnectionDoc): ConnectionView {
    return {
      connectionId: doc._id,
      provider: doc.provider,
      kind: doc.kind,
      fhirEndpoint: doc.fhirBaseUrl,
      patientId: doc.patientId,
      scopes: doc.scopes,
      status: doc.status,
      statusReason: doc.statusReason,
      tokenExpiresAt: doc.accessTokenExpiresAt?.toISOString(),
      ...(doc.deletingSince ? { deletingSince: doc.deletingSince.toISOString() } : {}),
      createdAt: doc.createdAt.toISOString(),
      updatedAt: doc.updatedAt.toISOString(),
    };
  }
}
