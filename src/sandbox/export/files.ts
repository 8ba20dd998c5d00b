/** Serving export files as streamed NDJSON (optionally gzip), on this server and on the storage host. */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { Request, Response } from 'express';
import { authenticate, type AuthLocals } from '../auth/bearer';
import type { SandboxContext } from '../context';
import { sendOutcome } from '../fhir/outcome';
import type { Ref } from '../data/dataset';
import { isRunning, type ExportFile, type ExportJob } from './jobs';
import { findJob, signFile } from './status';

const CHUNK = 64 * 1024;

function* lines(ctx: SandboxContext, file: ExportFile): Generator<string> {
  let buffer = '';
  const malformedEvery = file.malformed > 0 ? Math.max(1, Math.floor(Math.max(1, file.count) / (file.malformed + 1))) : 0;
  let injected = 0;
  const push = (line: string): string | null => {
    buffer += line + '\n';
    if (buffer.length >= CHUNK) {
      const out = buffer;
      buffer = '';
      return out;
    }
    return null;
  };
  let i = 0;
  const total = file.kind === 'output' ? file.refs.length : file.lines.length;
  for (; i < total; i++) {
    let line: string;
    if (file.kind === 'output') {
      const type = file.resourceType;
      if (!type) throw new Error('output file without a resource type');
      line = JSON.stringify(ctx.store.resourceOf(type, file.refs[i] as Ref));
    } else {
      line = file.lines[i] as string;
    }
    const out = push(line);
    if (out) yield out;
    if (malformedEvery > 0 && injected < file.malformed && (i + 1) % malformedEvery === 0) {
      injected++;
      const bad = push(`{"resourceType":"${file.type}","id":"malformed-${injected}","status":`);
      if (bad) yield bad;
    }
  }
  while (injected < file.malformed) {
    injected++;
    const bad = push(`{"resourceType":"${file.type}","id":"malformed-${injected}","status":`);
    if (bad) yield bad;
  }
  if (buffer.length > 0) yield buffer;
}

function wantsGzip(req: Request): boolean {
  const header = req.get('accept-encoding') ?? '';
  return header.split(',').some((part) => {
    const [name, ...params] = part.trim().split(';');
    if (name?.trim().toLowerCase() !== 'gzip') return false;
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    return !q || Number(q.slice(2)) > 0;
  });
}

async function stream(ctx: SandboxContext, req: Request, res: Response, file: ExportFile): Promise<void> {
  res.status(200);
  res.setHeader('Content-Type', 'application/fhir+ndjson');
  res.setHeader('Vary', 'Accept-Encoding');
  const source = Readable.from(lines(ctx, file));
  try {
    if (wantsGzip(req)) {
      res.setHeader('Content-Encoding', 'gzip');
      await pipeline(source, createGzip(), res);
    } else {
      await pipeline(source, res);
    }
  } catch {
    // client went away or the connection was dropped on purpose; nothing else to do
    if (!res.destroyed) res.destroy();
  }
}

function fileOf(job: ExportJob, name: string): ExportFile | undefined {
  const base = name.replace(/\.ndjson$/, '');
  return job.files.find((f) => f.name === base);
}

function checkReady(ctx: SandboxContext, res: Response, job: ExportJob): boolean {
  const now = Date.now();
  if (isRunning(job, now, ctx.exportSettings.neverFinish) || job.settings.failJobs) {
    sendOutcome(res, 404, 'not-found', 'The export is not complete');
    return false;
  }
  if (job.expiresAt === null) job.expiresAt = Math.max(now, job.readyAt) + job.settings.fileTtlSeconds * 1000;
  if (now >= job.expiresAt) {
    sendOutcome(res, 410, 'expired', 'This export file has expired; start a new export');
    return false;
  }
  return true;
}

/** GET {url}/bulkfiles/{jobId}/{file}.ndjson on the FHIR server. */
export function fileRoute(ctx: SandboxContext) {
  return async (req: Request, res: Response): Promise<void> => {
    const jobId = String(req.params.id);
    const peek = ctx.jobs.get(jobId);
    const needsToken = peek ? peek.requiresAccessToken : true;
    if (needsToken && !authenticate(ctx, req, res)) return;
    const job = findJob(ctx, res, jobId, needsToken ? (res.locals as AuthLocals).auth : undefined);
    if (!job) return;
    const file = fileOf(job, String(req.params.file));
    if (!file) return sendOutcome(res, 404, 'not-found', 'No such export file');
    if (!checkReady(ctx, res, job)) return;
    if (job.settings.fileOrigin === 'redirect' && ctx.storage.origin) {
      res.redirect(302, `${ctx.storage.origin}/bulkfiles/${job.id}/${file.name}.ndjson?sig=${signFile(ctx, job.id, file.name)}`);
      return;
    }
    await stream(ctx, req, res, file);
  };
}

/** The same files on the storage host (signed URLs, no bearer token needed; records what it saw). */
export function storageFileRoute(ctx: SandboxContext) {
  return async (req: Request, res: Response): Promise<void> => {
    const jobId = String(req.params.id);
    const name = String(req.params.file).replace(/\.ndjson$/, '');
    const record = {
      at: new Date().toISOString(),
      method: req.method,
      path: req.path,
      hadAuthorization: req.get('authorization') !== undefined,
      status: 0,
    };
    ctx.storage.requests.push(record);
    res.on('finish', () => {
      record.status = res.statusCode;
    });
    const sig = new URL(req.originalUrl, 'http://x').searchParams.get('sig');
    if (sig !== signFile(ctx, jobId, name)) {
      record.status = 403;
      res.status(403).type('text/plain').send('Signature mismatch');
      return;
    }
    const job = ctx.jobs.get(jobId);
    const file = job && !job.deleted ? fileOf(job, name) : undefined;
    if (!job || !file) {
      res.status(404).type('text/plain').send('Not found');
      return;
    }
    if (!checkReady(ctx, res, job)) return;
    await stream(ctx, req, res, file);
  };
}
