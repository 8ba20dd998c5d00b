import type { Response } from 'express';
import type { z } from 'zod';
import { AppError } from '../errors';

/**
 * Answers `{ success: true, data }` with data checked against the answer's schema: at compile time (data must fit
 * the schema's input) and at run time (parsed, so only documented fields are sent). The schemas are the ones the
 * OpenAPI document is generated from (./answerSchemas.ts), so the document and the answers cannot drift apart.
 */
export function answer<S extends z.ZodType>(res: Response, schema: S, data: z.input<S>, status = 200): void {
  const parsed = schema.safeParse(data);
  if (!parsed.success) throw new AnswerSchemaError(parsed.error.issues);
  res.status(status).json({ success: true, data: parsed.data });
}

/**
 * An answer that breaks its own schema is a bug of the service, not of the request: a 500 whose log names the
 * fields (paths and rules only, never the values, which may be patient data).
 */
export class AnswerSchemaError extends AppError {
  constructor(issues: z.core.$ZodIssue[]) {
    super('INTERNAL', `The answer does not match its documented schema (${issues.map((i) => `${i.path.join('.') || 'data'}: ${i.message}`).join('; ')}).`, { status: 500 });
  }
}
