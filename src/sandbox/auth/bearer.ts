/** Bearer token check for FHIR and bulk-data requests. */
import type { NextFunction, Request, Response } from 'express';
import type { SandboxContext } from '../context';
import { sendOutcome } from '../fhir/outcome';
import { tokenFingerprint } from '../stats';
import type { AccessTokenRecord } from './tokens';
import { grantsOf } from './scopes';

export interface AuthLocals {
  auth?: AccessTokenRecord;
  clientId?: string;
  tokenFp?: string;
}

export function bearerToken(req: Request): string | undefined {
  const header = req.get('authorization');
  if (!header) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m ? m[1] : undefined;
}

const OPEN_ACCESS: AccessTokenRecord = {
  clientId: 'open-access',
  scopes: ['system/*.read'],
  grants: grantsOf(['system/*.read']),
  expiresAt: Number.MAX_SAFE_INTEGER,
  backend: true,
};

/** Checks the bearer token; on success sets res.locals.auth. Returns false after answering 401. */
export function authenticate(ctx: SandboxContext, req: Request, res: Response): boolean {
  const locals0 = res.locals as AuthLocals;
  if (ctx.options.openMode) {
    // An open server reads no token: every request is served as a system-level read of everything.
    locals0.auth = OPEN_ACCESS;
    locals0.clientId = OPEN_ACCESS.clientId;
    return true;
  }
  const token = bearerToken(req);
  const check = ctx.tokens.checkAccess(token);
  const locals = res.locals as AuthLocals;
  if (token) locals.tokenFp = tokenFingerprint(token);
  if (!check.ok) {
    const challenge =
      check.reason === 'missing'
        ? 'Bearer realm="fhir-sandbox"'
        : `Bearer realm="fhir-sandbox", error="invalid_token", error_description="${
            check.reason === 'expired' ? 'The access token expired' : 'Unknown access token'
          }"`;
    const diagnostics =
      check.reason === 'missing'
        ? 'Authorization: Bearer <token> is required'
        : check.reason === 'expired'
          ? 'The access token expired'
          : 'The access token is not valid';
    sendOutcome(res, 401, check.reason === 'expired' ? 'expired' : 'login', diagnostics, { 'WWW-Authenticate': challenge });
    return false;
  }
  locals.auth = check.record;
  locals.clientId = check.record.clientId;
  return true;
}

export function requireBearer(ctx: SandboxContext) {
  return (req: Request, res: Response, next: NextFunction): void => {
    if (authenticate(ctx, req, res)) next();
  };
}
