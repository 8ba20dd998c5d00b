/** Express middleware: request stats, the shared rate limiter, and fault injection. */
import type { NextFunction, Request, Response } from 'express';
import { bearerToken, type AuthLocals } from '../auth/bearer';
import { tokenFingerprint } from '../stats';
import type { SandboxContext } from '../context';
import { sendOutcome } from '../fhir/outcome';
import type { PathKind } from '../types';
import { classify } from './classify';

export interface RequestLocals extends AuthLocals {
  kind?: PathKind;
}

function kindOf(res: Response): PathKind {
  return (res.locals as RequestLocals).kind ?? 'other';
}

/** Classifies the request and records it in the stats when the answer is done (or the socket dropped). */
export function statsMiddleware(ctx: SandboxContext) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const kind = classify(req.method, req.path);
    const locals = res.locals as RequestLocals;
    locals.kind = kind;
    const token = bearerToken(req);
    if (token) {
      locals.tokenFp = tokenFingerprint(token);
      locals.clientId = ctx.tokens.clientOf(token);
    }
    ctx.stats.arrived(kind, req.get('authorization') !== undefined);
    let recorded = false;
    const record = (status: number | 'dropped'): void => {
      if (recorded) return;
      recorded = true;
      ctx.stats.finished(kind, status, locals.clientId, locals.tokenFp);
    };
    res.on('finish', () => record(res.statusCode));
    res.on('close', () => record(res.writableFinished ? res.statusCode : 'dropped'));
    next();
  };
}

/** The server-wide rate limiter: every request counts (token, FHIR, export, file downloads). */
export function rateLimitMiddleware(ctx: SandboxContext) {
  return (_req: Request, res: Response, next: NextFunction): void => {
    const decision = ctx.limiter.take();
    for (const [k, v] of Object.entries(decision.headers)) res.setHeader(k, v);
    if (!decision.allowed) {
      ctx.stats.count('rateLimited');
      sendOutcome(res, 429, 'throttled', 'Rate limit exceeded', { 'Retry-After': String(decision.retryAfterSeconds) });
      return;
    }
    ctx.stats.admittedByLimiter();
    next();
  };
}

/** Cuts the response off after a few bytes by destroying the socket. */
function armDrop(ctx: SandboxContext, res: Response): void {
  const limit = 512;
  let written = 0;
  let cut = false;
  const origWrite = res.write.bind(res) as (chunk: unknown, ...rest: unknown[]) => boolean;
  const toBuffer = (chunk: unknown, encoding?: unknown): Buffer =>
    Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk), typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
  const doCut = (): void => {
    if (cut) return;
    cut = true;
    ctx.stats.count('dropped');
    res.socket?.destroy();
  };
  res.write = ((chunk: unknown, ...rest: unknown[]): boolean => {
    if (cut) return false;
    const buf = toBuffer(chunk, rest[0]);
    if (written + buf.length > limit) {
      origWrite(buf.subarray(0, Math.max(1, limit - written)));
      setImmediate(doCut);
      return false;
    }
    written += buf.length;
    return origWrite(chunk, ...rest);
  }) as typeof res.write;
  res.end = ((chunk?: unknown, ...rest: unknown[]): Response => {
    if (!cut) {
      if (chunk !== undefined && chunk !== null && typeof chunk !== 'function') {
        const buf = toBuffer(chunk, rest[0]);
        origWrite(buf.subarray(0, Math.max(1, Math.min(limit, Math.floor(buf.length / 2)))));
      } else if (!res.headersSent) {
        res.flushHeaders();
      }
      setImmediate(doCut);
    }
    return res;
  }) as typeof res.end;
}

export function faultMiddleware(ctx: SandboxContext) {
  return (_req: Request, res: Response, next: NextFunction): void => {
    const f = ctx.faults;
    if (!f.applyTo.includes(kindOf(res))) return next();
    if (f.storm429 > 0) {
      f.storm429--;
      sendOutcome(res, 429, 'throttled', 'Too many requests (storm)', { 'Retry-After': f.storm429RetryAfter || String(f.storm429RetryAfterSeconds) });
      return;
    }
    let inject = false;
    if (f.errorBurst > 0) {
      f.errorBurst--;
      inject = true;
    } else if (f.errorUntil > Date.now()) {
      inject = true;
    } else if (f.errorRate > 0 && ctx.faultRng() < f.errorRate) {
      inject = true;
    }
    if (inject) {
      const statuses = f.errorStatuses.length > 0 ? f.errorStatuses : [500];
      const status = statuses[Math.floor(ctx.faultRng() * statuses.length)] ?? 500;
      ctx.stats.count('injectedErrors');
      sendOutcome(res, status, 'exception', `Simulated server error ${status}`, status === 503 ? { 'Retry-After': '1' } : {});
      return;
    }
    let drop = false;
    if (f.dropNext > 0) {
      f.dropNext--;
      drop = true;
    } else if (f.dropRate > 0 && ctx.faultRng() < f.dropRate) {
      drop = true;
    }
    if (drop) armDrop(ctx, res);
    if (f.delayMs > 0) setTimeout(next, f.delayMs);
    else next();
  };
}
