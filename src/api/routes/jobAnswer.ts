import type { Response } from 'express';
import { ok } from '../envelope';
import type { JobAnswer } from '../workflowGateway';

/** Sends a job answer: its status, the job's URL as Location, and Idempotent-Replayed when the job already existed. */
export function send(res: Response, answer: JobAnswer<unknown>): void {
  res.set('Location', answer.location);
  if (answer.replayed) res.set('Idempotent-Replayed', 'true');
  ok(res, answer.view, answer.status);
}
