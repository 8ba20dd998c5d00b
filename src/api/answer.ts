import type { Response } from 'express';
import type { z } from 'zod';

/**
 * Answers `{ success: true, data }` with data checked against the answer's schema: at compile time (data must fit
 * the schema's input) and at run time (parsed, so only documented fields are sent). The schemas are the ones the
 * OpenAPI document is generated from (./answerSchemas.ts), so the document and the answers cannot drift apart.
 * A parse failure is a bug of the service: it reaches the error handler as a 500, and the logs say which field.
 */
export function answer<S extends z.ZodType>(res: Response, schema: S, data: z.input<S>, status = 200): void {
  res.status(status).json({ success: true, data: schema.parse(data) });
}
