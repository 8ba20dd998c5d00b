import type { Response } from 'express';
import type { z } from 'zod';
import { answer } from '../answer';
import type { JobAnswer } from '../workflowGateway';

/**
 * Sends a job answer: its status, the job's URL as Location, and Idempotent-Replayed when the job already existed.
 * The view goes through `answer()` with the job kind's documented schema (./answerSchemas.ts).
 */
export function send<S extends z.ZodType>(res: Response, schema: S, job: JobAnswer<z.input<S>>): void {
  res.set('Location', job.location);
  if (job.replayed) res.set('Idempotent-Replayed', 'true');
  answer(res, schema, job.view, job.status);
}
