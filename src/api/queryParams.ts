import type { RequestHandler } from 'express';
import { BadRequestError } from '../errors';

/**
 * Refuses query parameters a route does not take, on every route, before the route runs.
 *
 * Why here and not only in each route's schema: most routes (POSTs with a body, GETs by path) read no query at all,
 * so nothing would notice `?connectionId=…` or `?status[$ne]=x` and the caller would believe a filter applied. The
 * allowed parameters are read from the OpenAPI document (itself generated from the routes' zod schemas), so the
 * document and the check cannot disagree: a route's parameters are exactly the `in: query` ones it documents.
 *
 * An operation may declare `x-unknown-query-parameters: ignored` (the OAuth callback: RFC 6749 §4.1.2 says a client
 * MUST ignore response parameters it does not know, and the EHR, not our caller, writes that query).
 */
type Json = Record<string, unknown>;

interface Operation {
  method: string;
  pattern: RegExp;
  /** Literal segments: when several templates match a path, the most specific wins (as Express routes do). */
  literals: number;
  allowed: ReadonlySet<string>;
  open: boolean;
}

export const IGNORES_UNKNOWN_QUERY = 'x-unknown-query-parameters';

function operationsOf(doc: Json): Operation[] {
  const ops: Operation[] = [];
  for (const [template, item] of Object.entries((doc.paths ?? {}) as Record<string, Record<string, Json>>)) {
    const segments = template.split('/').filter(Boolean);
    const source = segments.map((s) => (/^\{.+\}$/.test(s) ? '[^/]+' : s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('/');
    // Express matches paths case-insensitively and with an optional trailing slash by default.
    const pattern = new RegExp(`^/${source}/?$`, 'i');
    const literals = segments.filter((s) => !/^\{.+\}$/.test(s)).length;
    for (const [method, op] of Object.entries(item)) {
      const params = (op.parameters ?? []) as Array<{ name: string; in: string }>;
      ops.push({
        method: method.toUpperCase(),
        pattern,
        literals,
        allowed: new Set(params.filter((p) => p.in === 'query').map((p) => p.name)),
        open: op[IGNORES_UNKNOWN_QUERY] === 'ignored',
      });
    }
  }
  return ops.sort((a, b) => b.literals - a.literals);
}

/** The middleware: a 400 naming every unknown parameter and what the route takes; undocumented routes pass on. */
export function refuseUnknownQueryParameters(doc: Json): RequestHandler {
  const ops = operationsOf(doc);
  return (req, _res, next) => {
    const names = Object.keys((req.query ?? {}) as object);
    if (names.length === 0) return next();
    const method = req.method === 'HEAD' ? 'GET' : req.method;
    const op = ops.find((o) => o.method === method && o.pattern.test(req.path));
    if (!op || op.open) return next();
    const unknown = names.filter((n) => !op.allowed.has(n));
    if (unknown.length === 0) return next();
    const takes = op.allowed.size > 0 ? `this route takes ${[...op.allowed].join(', ')}` : 'this route takes no query parameters';
    // Names are the caller's input: shown cut short, a few at most.
    const shown = unknown.slice(0, 5).map((n) => JSON.stringify(n.length > 64 ? `${n.slice(0, 64)}…` : n));
    next(
      new BadRequestError(
        `Invalid request query: unknown parameter${unknown.length > 1 ? 's' : ''} ${shown.join(', ')}${unknown.length > 5 ? ` and ${unknown.length - 5} more` : ''} (${takes}).`,
        unknown.slice(0, 20).map((n) => ({ path: [n.slice(0, 64)], message: 'unknown query parameter' })),
      ),
    );
  };
}
