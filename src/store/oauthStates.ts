import { createHash } from 'node:crypto';
import type { Collection, Db } from 'mongodb';
import type { SecretBox } from '../crypto/secretBox';
import { COLLECTIONS } from './mongo';

/**
 * Authorizations in flight: one document per `state`, holding the PKCE verifier (sealed) and where the flow
 * started. The state is stored hashed, expired ones are purged on every new authorization (no TTL index, which
 * FerretDB lacks), and the callback takes it with one
 * atomic delete, so a state (and with it a code exchange) is usable exactly once.
 */
export interface PendingAuthorization {
  provider: string;
  fhirBaseUrl: string;
  codeVerifier: string;
  redirectUri: string;
  scopes: string[];
  createdAt: Date;
  expiresAt: Date;
}

interface PendingDoc extends Omit<PendingAuthorization, 'codeVerifier'> {
  _id: string;
  sealedCodeVerifier: string;
}

const hashState = (state: string) => createHash('sha256').update(state).digest('base64url');

export class OAuthStateStore {
  private readonly col: Collection<PendingDoc>;

  constructor(db: Db, private readonly box: SecretBox) {
    this.col = db.collection<PendingDoc>(COLLECTIONS.oauthStates);
  }

  async put(state: string, pending: PendingAuthorization): Promise<void> {
    const id = hashState(state);
    const { codeVerifier, ...rest } = pending;
    await this.col.deleteMany({ expiresAt: { $lt: new Date() } });
    await this.col.insertOne({ _id: id, ...rest, sealedCodeVerifier: this.box.seal(codeVerifier, `oauth-state:${id}`) });
  }

  /** Removes and returns the pending authorization; null when unknown, used or expired. */
  async take(state: string): Promise<PendingAuthorization | null> {
    const id = hashState(state);
    const doc = await this.col.findOneAndDelete({ _id: id });
    if (!doc || doc.expiresAt.getTime() < Date.now()) return null;
    const { _id, sealedCodeVerifier, ...rest } = doc;
    return { ...rest, codeVerifier: this.box.open(sealedCodeVerifier, `oauth-state:${_id}`) };
  }
}
