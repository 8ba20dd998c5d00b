import type { Response } from 'express';
import type { z } from 'zod';
import { AppError } from '../errors';

/**
 * `D` with every field its documented type `T` lacks turned into `never`, at any depth: a handler cannot hand
 * `answer()` a field the schema would strip (it would silently vanish from the answer). Open parts of a schema
 * (`unknown`, records, loose objects) take anything.
 */
export type NoUndocumented<D, T> = unknown extends T
  ? D
  : D extends readonly (infer E)[]
    ? NonNullable<T> extends readonly (infer F)[]
      ? readonly NoUndocumented<E, F>[]
      : D
    : D extends object
      ? { [K in keyof D]: K extends KeysOf<NonNullable<T>> ? NoUndocumented<D[K], ValueOf<NonNullable<T>, K>> : never }
      : D;
/** The keys of any member of a union (keyof of a union has only the common ones). */
type KeysOf<T> = T extends unknown ? keyof T : never;
/** The type of key K in the members of a union that have it. */
type ValueOf<T, K extends PropertyKey> = T extends unknown ? (K extends keyof T ? T[K] : never) : never;

/**
 * Answers `{ success: true, data }` with data checked against the answer's schema: at compile time (data must fit
 * the schema's input) and at run time (parsed, so only documented fields are sent). The schemas are the ones the
 * OpenAPI document is generated from (./answerSchemas.ts), so the document and the answers cannot drift apart.
 */
export function answer<S extends z.ZodType, D extends z.input<S>>(res: Response, schema: S, data: D & NoUndocumented<D, z.input<S>>, status = 200): void {
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
