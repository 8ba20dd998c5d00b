import { z } from 'zod';
import { BadRequestError } from '../errors';

/** Parses request input with a zod schema; a failure is a 400 whose message lists every problem. */
export function parse<S extends z.ZodType>(schema: S, input: unknown, where: 'body' | 'query' | 'path' | 'header'): z.output<S> {
  const result = schema.safeParse(input ?? {});
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => `${i.path.length ? i.path.join('.') : where}: ${i.message}`);
  throw new BadRequestError(`Invalid request ${where}: ${problems.join('; ')}`, result.error.issues.map((i) => ({ path: i.path.map(String), message: i.message })));
}

/** Ids the API accepts in paths and queries: plain tokens, so nothing else reaches a query. */
export const IdSchema = z.string().regex(/^[A-Za-z0-9_.-]{1,128}$/, 'must be 1-128 letters, digits, dot, dash or underscore');
export const ConnectionIdSchema = z.string().regex(/^conn_[A-Za-z0-9_-]{8,64}$/, 'must be a connection id like conn_…');
export const ProviderIdSchema = z.string().regex(/^[a-z0-9][a-z0-9-]{0,39}$/, 'must be a provider id such as eclinicalworks');
