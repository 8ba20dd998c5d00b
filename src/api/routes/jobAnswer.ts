import type { Response } from 'express';
import type { z } from 'zod';
import { answer, type NoUndocumented } from '../answer';
import type { JobAnswer } from '../workflowGateway';

/**
 * Sends a job answer: its status, the job's URL as Location, and Idempotent-Replayed when the job already existed.
 * The view goes through `answer()` with the job kind's documented schema (./answerSchemas.ts).
 */
export function send<S extends z.ZodType, D extends z.input<S>>(res: Response, schema: S, job: JobAnswer<D & NoUndocumented<D, z.input<S>>>): void {
  res.set('Location', job.location);
  if (job.replayed) res.set('Idempotent-Replayed', 'true');
  answer<S, D>(res, schema, job.view, job.status);
}
