/** In-memory authorization codes, access tokens and refresh tokens (opaque random strings). */
import { randomBytes } from 'node:crypto';
import { grantsOf, type ResourceGrant } from './scopes';

export interface AccessTokenRecord {
  clientId: string;
  scopes: string[];
  grants: ResourceGrant[];
  /** Patient id of the launch context (patient-scoped tokens). */
  patient?: string;
  expiresAt: number;
  backend: boolean;
  /** Authorization grant family (code and its refresh chain); revoked together. */
  family?: string;
}

export interface RefreshTokenRecord {
  clientId: string;
  scopes: string[];
  patient?: string;
  expiresAt: number;
  family: string;
  used: boolean;
}

export interface CodeRecord {
  clientId: string;
  redirectUri: string;
  scopes: string[];
  patient?: string;
  codeChallenge: string;
  expiresAt: number;
  used: boolean;
  family: string;
}

export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

export type TokenCheck =
  | { ok: true; record: AccessTokenRecord }
  | { ok: false; reason: 'missing' | 'unknown' | 'expired' };

export class TokenService {
  private readonly access = new Map<string, AccessTokenRecord>();
  private readonly refresh = new Map<string, RefreshTokenRecord>();
  private readonly codes = new Map<string, CodeRecord>();
  private readonly jtis = new Map<string, number>();
  private readonly revokedFamilies = new Set<string>();

  issueAccess(input: Omit<AccessTokenRecord, 'grants' | 'expiresAt'> & { ttlSeconds: number }): { token: string; record: AccessTokenRecord } {
    this.sweep();
    const token = randomToken();
    const record: AccessTokenRecord = {
      clientId: input.clientId,
      scopes: input.scopes,
      grants: grantsOf(input.scopes),
      patient: input.patient,
      expiresAt: Date.now() + input.ttlSeconds * 1000,
      backend: input.backend,
      family: input.family,
    };
    this.access.set(token, record);
    return { token, record };
  }

  checkAccess(token: string | undefined): TokenCheck {
    if (!token) return { ok: false, reason: 'missing' };
    const record = this.access.get(token);
    if (!record) return { ok: false, reason: 'unknown' };
    if (record.expiresAt <= Date.now()) return { ok: false, reason: 'expired' };
    return { ok: true, record };
  }

  /** Client an access token was issued to (expired or not), for statistics. */
  clientOf(token: string): string | undefined {
    return this.access.get(token)?.clientId;
  }

  /** Makes every access token expired now (refresh tokens stay valid). */
  expireAllAccessTokens(): number {
    const now = Date.now();
    let n = 0;
    for (const record of this.access.values()) {
      if (record.expiresAt > now) {
        record.expiresAt = now - 1;
        n++;
      }
    }
    return n;
  }

  issueRefresh(input: Omit<RefreshTokenRecord, 'used' | 'expiresAt'> & { ttlSeconds: number }): string {
    const token = randomToken();
    this.refresh.set(token, {
      clientId: input.clientId,
      scopes: input.scopes,
      patient: input.patient,
      family: input.family,
      expiresAt: Date.now() + input.ttlSeconds * 1000,
      used: false,
    });
    return token;
  }

  getRefresh(token: string): RefreshTokenRecord | undefined {
    return this.refresh.get(token);
  }

  createCode(input: Omit<CodeRecord, 'used' | 'family' | 'expiresAt'> & { ttlSeconds: number }): string {
    const code = randomToken();
    this.codes.set(code, {
      clientId: input.clientId,
      redirectUri: input.redirectUri,
      scopes: input.scopes,
      patient: input.patient,
      codeChallenge: input.codeChallenge,
      expiresAt: Date.now() + input.ttlSeconds * 1000,
      used: false,
      family: randomToken(12),
    });
    return code;
  }

  getCode(code: string): CodeRecord | undefined {
    return this.codes.get(code);
  }

  /** Revokes every access and refresh token of a grant family. */
  revokeFamily(family: string): void {
    this.revokedFamilies.add(family);
    for (const [t, r] of this.access) if (r.family === family) this.access.delete(t);
    for (const [t, r] of this.refresh) if (r.family === family) this.refresh.delete(t);
  }

  isFamilyRevoked(family: string): boolean {
    return this.revokedFamilies.has(family);
  }

  /** Records a client-assertion jti; false when it was seen before (replay). */
  useJti(clientId: string, jti: string, expiresAt: number): boolean {
    const key = `${clientId}\u0000${jti}`;
    const seen = this.jtis.get(key);
    if (seen !== undefined) return false;
    this.jtis.set(key, expiresAt);
    return true;
  }

  counts(): { access: number; refresh: number; codes: number } {
    return { access: this.access.size, refresh: this.refresh.size, codes: this.codes.size };
  }

  private sweep(): void {
    if (this.access.size + this.codes.size + this.jtis.size < 20_000) return;
    const now = Date.now();
    for (const [t, r] of this.access) if (r.expiresAt < now - 3600_000) this.access.delete(t);
    for (const [c, r] of this.codes) if (r.expiresAt < now - 3600_000) this.codes.delete(c);
    for (const [j, exp] of this.jtis) if (exp < now - 600_000) this.jtis.delete(j);
  }
}
