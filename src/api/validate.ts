import { z } from 'zod';
import { BadRequestError } from '../errors';

/** Where a request input comes from; named in every message so the caller knows what to fix. */
export type InputPlace = 'body' | 'query' | 'path' | 'header';

/**
 * Parses request input with a zod schema; a failure is a 400 whose message lists every problem. Query objects are
 * strict whatever the schema says: an unknown parameter (a misspelt filter, `status[$ne]`) is refused, never
 * silently dropped, since the caller believes it applied. Only the OAuth callback ignores them (`unknownQuery:
 * 'ignore'`): RFC 6749 §4.1.2 tells clients to ignore response parameters they do not know.
 */
export function parse<S extends z.ZodType>(schema: S, input: unknown, where: InputPlace, opts: { unknownQuery?: 'refuse' | 'ignore' } = {}): z.output<S> {
  const strict = where === 'query' && schema instanceof z.ZodObject && opts.unknownQuery !== 'ignore';
  const checked = strict ? (schema.strict() as unknown as S) : schema;
  const result = checked.safeParse(input ?? {});
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => `${i.path.length ? i.path.join('.') : where}: ${i.message}`);
  throw new BadRequestError(`Invalid request ${where}: ${problems.join('; ')}`, result.error.issues.map((i) => ({ path: i.path.map(String), message: i.message })));
}

/** A request header checked with a schema; undefined when absent. A bad one is a 400 naming the header. */
export function parseHeader<S extends z.ZodType>(schema: S, req: { get(name: string): string | undefined }, name: string): z.output<S> | undefined {
  const value = req.get(name);
  if (value === undefined) return undefined;
  return parse(z.object({ [name]: schema }), { [name]: value }, 'header')[name] as z.output<S>;
}

/** Ids the API accepts in paths and queries: plain tokens, so nothing else reaches a query. */
export const IdSchema = z.string().regex(/^[A-Za-z0-9_.-]{1,128}$/, 'must be 1-128 letters, digits, dot, dash or underscore');
export const ConnectionIdSchema = z.string().regex(/^conn_[A-Za-z0-9_-]{8,64}$/, 'must be a connection id like conn_…');
export const ProviderIdSchema = z.string().regex(/^[a-z0-9][a-z0-9-]{0,39}$/, 'must be a provider id such as eclinicalworks');
