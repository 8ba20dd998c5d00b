/** Bulk export status endpoint: 202 while running, 200 + manifest when done, DELETE cancels. */
import { createHmac } from 'node:crypto';
import type { Request, Response } from 'express';
import { authenticate, type AuthLocals } from '../auth/bearer';
import type { AccessTokenRecord } from '../auth/tokens';
import { serverRoot, type SandboxContext } from '../context';
import { sendFhir, sendOutcome } from '../fhir/outcome';
import { httpDate, iso } from '../util/time';
import { isRunning, type ExportFile, type ExportJob } from './jobs';

export function signFile(ctx: SandboxContext, jobId: string, file: string): string {
  return createHmac('sha256', ctx.storageSecret).update(`${jobId}/${file}`).digest('base64url').slice(0, 32);
}

/** URL of a file as it appears in the manifest. */
export function fileUrl(ctx: SandboxContext, req: Request, job: ExportJob, file: ExportFile): string {
  const path = `/bulkfiles/${job.id}/${file.name}.ndjson`;
  if (job.settings.fileOrigin === 'storage' && ctx.storage.origin) {
    return `${ctx.storage.origin}${path}?sig=${signFile(ctx, job.id, file.name)}`;
  }
  return `${serverRoot(ctx, req)}${path}`;
}

/**
 * Retry-After for a status answer. A server that refuses polls sooner than minPollIntervalMs must not ask for one
 * sooner: the wait is raised to the interval, rounded up to whole seconds (unless retryAfterBelowMinPoll says to
 * lie). An HTTP date has second precision, so it is rounded up too: truncating it would ask for a poll up to a
 * second early, which the interval check then refuses.
 */
function retryAfter(ctx: SandboxContext, job: ExportJob, now: number): string {
  const live = ctx.exportSettings;
  const minimum = live.retryAfterBelowMinPoll ? 0 : Math.ceil(live.minPollIntervalMs / 1000);
  const seconds = Math.max(job.settings.retryAfterSeconds, minimum);
  if (job.settings.retryAfterFormat !== 'http-date') return String(seconds);
  return httpDate(Math.ceil((now + seconds * 1000) / 1000) * 1000);
}

/** Finds the job for a status or file request; answers 404 and returns null when it is not there. */
export function findJob(ctx: SandboxContext, res: Response, jobId: string, auth: AccessTokenRecord | undefined): ExportJob | null {
  const job = ctx.jobs.get(jobId);
  if (!job || job.deleted || (auth && auth.clientId !== job.clientId)) {
    sendOutcome(res, 404, 'not-found', `No export job ${jobId}`);
    return null;
  }
  return job;
}

export function statusRoute(ctx: SandboxContext) {
  return (req: Request, res: Response): void => {
    if (!authenticate(ctx, req, res)) return;
    const auth = (res.locals as AuthLocals).auth as AccessTokenRecord;
    const job = findJob(ctx, res, String(req.params.id), auth);
    if (!job) return;
    const now = Date.now();

    if (req.method === 'DELETE') {
      job.deleted = true;
      sendFhir(res, 202, {
        resourceType: 'OperationOutcome',
        issue: [{ severity: 'information', code: 'informational', diagnostics: `Export job ${job.id} cancelled` }],
      });
      return;
    }

    const settings = ctx.exportSettings;
    if (settings.minPollIntervalMs > 0 && job.lastPollAt !== null && now - job.lastPollAt < settings.minPollIntervalMs) {
      const wait = Math.max(1, Math.ceil((job.lastPollAt + settings.minPollIntervalMs - now) / 1000));
      sendOutcome(res, 429, 'throttled', 'Polled too often', { 'Retry-After': String(wait) });
      return;
    }
    job.lastPollAt = now;
    job.polls++;

    if (settings.statusErrors > 0) {
      settings.statusErrors--;
      if (settings.statusErrorKind === 'transient') {
        sendFhir(res, 500, {
          resourceType: 'OperationOutcome',
          issue: [{ severity: 'error', code: 'transient', diagnostics: 'Temporary failure while checking the export; retry later' }],
        }, { 'Retry-After': retryAfter(ctx, job, now) });
      } else {
        const status = Number(settings.statusErrorKind);
        sendOutcome(res, status, 'exception', `Simulated ${status} on status poll`);
      }
      return;
    }

    const running = isRunning(job, now, ctx.exportSettings.neverFinish);
    if (running) {
      const span = Math.max(1, job.readyAt - job.createdAt);
      const pct = Math.min(99, Math.floor(((now - job.createdAt) / span) * 100));
      res.setHeader('X-Progress', `${pct}% complete`);
      res.setHeader('Retry-After', retryAfter(ctx, job, now));
      res.status(202).end();
      return;
    }
    if (job.settings.failJobs) {
      sendOutcome(res, 500, 'exception', `Export job ${job.id} failed: simulated internal error`);
      return;
    }
    if (job.expiresAt === null) job.expiresAt = Math.max(now, job.readyAt) + job.settings.fileTtlSeconds * 1000;
    if (now >= job.expiresAt) {
      sendOutcome(res, 404, 'not-found', `Export job ${job.id} has expired`);
      return;
    }
    const entry = (f: ExportFile): Record<string, unknown> => ({ type: f.type, url: fileUrl(ctx, req, job, f), count: f.count });
    const manifest: Record<string, unknown> = {
      transactionTime: iso(job.transactionTime),
      request: job.request,
      requiresAccessToken: job.requiresAccessToken,
      output: job.files.filter((f) => f.kind === 'output').map(entry),
      error: job.files.filter((f) => f.kind === 'error').map((f) => ({ type: 'OperationOutcome', url: fileUrl(ctx, req, job, f) })),
    };
    const deleted = job.files.filter((f) => f.kind === 'deleted');
    if (deleted.length > 0) manifest.deleted = deleted.map((f) => ({ type: 'Bundle', url: fileUrl(ctx, req, job, f) }));
    res.setHeader('Expires', httpDate(job.expiresAt));
    res.status(200).type('application/json').send(JSON.stringify(manifest));
  };
}
