/**
 * Seeded hostile-request generators for the bad-input scenario and test/integration/hostileInput.test.ts.
 *
 * The routes come from the API's own OpenAPI document (GET /api/openapi.json), so a route added later is fed
 * hostile input without touching this file. Every generated request carries at least one defect that the API must
 * refuse (a missing or wrong API key, a malformed or unknown id, a body or query value that breaks its schema, a
 * body that is not JSON or too large, a wrong method or a path trick): a correct API answers each with a 4xx in
 * the error envelope and changes nothing. Requests that a correct API may accept (an unknown query parameter, a
 * well-formed body) are never generated, so a 2xx is always a finding.
 */
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import fc from 'fast-check';
import { createApp } from '../../src/api/app';
import { createLogger } from '../../src/logger';

type Json = Record<string, unknown>;
type JsonSchema = {
  type?: string | string[];
  anyOf?: JsonSchema[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  enum?: unknown[];
  pattern?: string;
  format?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  maxItems?: number;
  default?: unknown;
};

export interface RouteInfo {
  method: string;
  /** OpenAPI template, e.g. /api/ehr/{provider}/enhanced-sync/{jobId} */
  template: string;
  authenticated: boolean;
  pathParams: string[];
  query: { name: string; required: boolean; schema: JsonSchema }[];
  body?: JsonSchema;
  /** Reads an Idempotency-Key header (documented as a header parameter, or a known idempotent POST). */
  idempotencyKey: boolean;
}

/** Real values the generators put where a defect is elsewhere (so the defect is the only reason to refuse). */
export interface Fixtures {
  apiKey: string;
  provider: string;
  connectionId: string;
  /** A finished enhanced sync (its retry answers 409). */
  syncJobId?: string;
  /** A finished bulk export (its cancel answers 409). */
  exportJobId?: string;
}

export interface HostileRequest {
  /** The category of defect, for the per-kind counts. */
  kind: string;
  route: string;
  method: string;
  /** Raw request target, sent as is (no client-side normalisation of dot segments or encodings). */
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
  /** Bytes written to the socket as they are (malformed HTTP that no client library would send). */
  raw?: Buffer;
}

export interface Outcome {
  req: HostileRequest;
  status?: number;
  contentType?: string;
  text?: string;
  error?: string;
  ms: number;
}

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
const BODY_LIMIT = 256 * 1024;

/** The routes of the document, one per method and path. */
function scalarOf(s: JsonSchema): JsonSchema {
  const anyOf = (s as { anyOf?: JsonSchema[] }).anyOf;
  return anyOf?.find((x) => x.type === 'string') ?? s;
}

export function routesFromOpenApi(doc: Json): RouteInfo[] {
  const globalSecurity = Array.isArray(doc.security) && doc.security.length > 0;
  const out: RouteInfo[] = [];
  for (const [template, item] of Object.entries((doc.paths ?? {}) as Record<string, Record<string, Json>>)) {
    for (const [m, op] of Object.entries(item)) {
      const method = m.toUpperCase();
      if (!(METHODS as readonly string[]).includes(method)) continue;
      const params = (op.parameters ?? []) as { name: string; in: string; required?: boolean; schema?: JsonSchema }[];
      const security = op.security as unknown[] | undefined;
      const body = ((op.requestBody as Json | undefined)?.content as Record<string, { schema?: JsonSchema }> | undefined)?.['application/json']?.schema;
      out.push({
        method,
        template,
        authenticated: security ? security.length > 0 : globalSecurity,
        pathParams: [...template.matchAll(/\{([^}]+)\}/g)].map((x) => x[1] as string),
        // A repeatable parameter is `anyOf: [string, array of string]`: its bad values are those of the string.
        query: params.filter((p) => p.in === 'query').map((p) => ({ name: p.name, required: Boolean(p.required), schema: scalarOf(p.schema ?? {}) })),
        body,
        idempotencyKey:
          params.some((p) => p.in === 'header' && p.name.toLowerCase() === 'idempotency-key') ||
          (method === 'POST' && /\/(enhanced-sync|bulk-export)$/.test(template)),
      });
    }
  }
  return out;
}

/**
 * The routes the Express app actually registers (method and template), read from its router: the generators feed
 * the ones the OpenAPI document does not list too. Routers mounted under a path prefix (one per area, under
 * /api/ehr) contribute their mount path (the layer's rawPath) before their routes' paths.
 */
export function routesOfExpressApp(app: unknown): { method: string; template: string }[] {
  type Layer = { rawPath?: unknown; route?: { path: unknown; methods: Record<string, boolean> }; handle?: { stack?: Layer[] } };
  const out: { method: string; template: string }[] = [];
  const join = (prefix: string, path: string) => (path === '/' && prefix ? prefix : `${prefix}${path}`);
  const walk = (stack: Layer[] | undefined, prefix: string) => {
    for (const layer of stack ?? []) {
      if (layer.route && typeof layer.route.path === 'string') {
        for (const [m, on] of Object.entries(layer.route.methods)) {
          if (on && (METHODS as readonly string[]).includes(m.toUpperCase())) out.push({ method: m.toUpperCase(), template: join(prefix, layer.route.path).replace(/:(\w+)/g, '{$1}') });
        }
      } else if (layer.handle?.stack) {
        const mount = typeof layer.rawPath === 'string' && layer.rawPath !== '/' ? layer.rawPath : '';
        walk(layer.handle.stack, `${prefix}${mount}`);
      }
    }
  };
  const a = app as { router?: { stack?: Layer[] }; _router?: { stack?: Layer[] } };
  walk(a.router?.stack ?? a._router?.stack, '');
  return out;
}

/** The routes of the API's Express app, built in this process with stand-ins for its dependencies (nothing runs). */
export function apiRoutesRegistered(): { method: string; template: string }[] {
  // Every property is another stand-in, except the given plain values (the app reads some config at build time).
  const stub = (values: Record<string | symbol, unknown> = {}): unknown =>
    new Proxy(function () {}, {
      get: (_t, p) => (p in values ? values[p] : p === 'then' || typeof p === 'symbol' ? undefined : stub()),
      apply: () => stub(),
      construct: () => stub() as object,
    });
  const services = stub({ config: { METRICS_TOKEN: undefined, API_WORKFLOW_WAIT_MS: 0, SYNC_SCHEDULE_MIN_INTERVAL_SECONDS: 300 } });
  const app = createApp({ services: services as never, workflows: stub() as never, apiKeys: ['route-listing-key-0000'], logger: createLogger('silent') });
  return routesOfExpressApp(app);
}

/** Registered routes the document does not list, as RouteInfo (no known inputs: the generic defects only). */
export function undocumentedRoutes(registered: { method: string; template: string }[], documented: RouteInfo[], isAuthenticated: (r: { method: string; template: string }) => boolean): RouteInfo[] {
  const known = new Set(documented.map((r) => `${r.method} ${r.template}`));
  return registered
    .filter((r) => !known.has(`${r.method} ${r.template}`))
    .map((r) => ({
      method: r.method,
      template: r.template,
      authenticated: isAuthenticated(r),
      pathParams: [...r.template.matchAll(/\{([^}]+)\}/g)].map((x) => x[1] as string),
      query: [],
      idempotencyKey: false,
    }));
}

// ---- values ----------------------------------------------------------------------------------------------------

/** Hostile strings: operator injection, path tricks, encodings, quotes, control characters. */
const HOSTILE_STRINGS = [
  '{"$gt":""}',
  '{"$ne":null}',
  '{"$where":"sleep(1000)"}',
  '$where',
  '$gt',
  '$regex',
  '..%2f..%2fetc%2fpasswd',
  '../../etc/passwd',
  '%2e%2e%2f',
  '%252e%252e%252f',
  '%00',
  '\u0000',
  "'; db.dropDatabase(); '",
  '" || "1"=="1',
  '<script>alert(1)</script>',
  '${7*7}',
  '__proto__',
  'constructor',
  'conn_ab$cd%00ef',
  '\u202e\u0301\ud83d\ude00',
  ' ',
  '\t\r\n',
];

const hostileString = fc.oneof(
  fc.constantFrom(...HOSTILE_STRINGS),
  fc.tuple(fc.constantFrom(...HOSTILE_STRINGS), fc.string({ maxLength: 20 })).map(([a, b]) => a + b),
  fc.integer({ min: 300, max: 5000 }).map((n) => 'A'.repeat(n)),
);

const operatorObject = fc.oneof(
  fc.constant({ $gt: '' }),
  fc.constant({ $ne: null }),
  fc.constant({ $where: 'function () { return true; }' }),
  fc.constant({ $regex: '.*' }),
  fc.constant({ $in: ['a', 'b'] }),
  fc.constant({ $expr: { $eq: [1, 1] } }),
  fc.dictionary(fc.constantFrom('$gt', '$lt', '$ne', '$exists', '$where', '$function'), fc.jsonValue({ maxDepth: 2 }), { minKeys: 1, maxKeys: 3 }),
);

function deep(depth: number, kind: 'array' | 'object'): string {
  return kind === 'array' ? '['.repeat(depth) + ']'.repeat(depth) : '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
}

function typesOf(s: JsonSchema): Set<string> {
  const out = new Set<string>();
  if (s.anyOf) for (const b of s.anyOf) for (const t of typesOf(b)) out.add(t);
  if (Array.isArray(s.type)) s.type.forEach((t) => out.add(t));
  else if (s.type) out.add(s.type);
  if (s.enum && !s.type) for (const v of s.enum) out.add(v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);
  if (out.has('integer')) out.add('number');
  return out;
}

/** JSON values whose type the schema does not allow (so the value is invalid whatever its content). */
function wrongTypeValue(s: JsonSchema): fc.Arbitrary<unknown> | undefined {
  const allowed = typesOf(s);
  if (allowed.size === 0) return undefined; // anything goes
  const options: fc.Arbitrary<unknown>[] = [];
  if (!allowed.has('object')) options.push(operatorObject, fc.constant(JSON.parse(deep(200, 'object'))));
  if (!allowed.has('array')) options.push(fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 4 }), fc.constant([{ $gt: '' }]));
  if (!allowed.has('string')) options.push(fc.constantFrom('true', '1', '{"$gt":""}', ''));
  if (!allowed.has('number')) options.push(fc.constantFrom(0, 1, -1, 1e300, 0.5));
  if (!allowed.has('boolean')) options.push(fc.boolean());
  if (!allowed.has('null')) options.push(fc.constant(null));
  return options.length ? fc.oneof(...options) : undefined;
}

/** Strings the schema refuses (pattern, length, enum, format); undefined when any string is accepted. */
function badStrings(s: JsonSchema): string[] {
  const out = new Set<string>();
  const re = s.pattern ? safeRegExp(s.pattern) : undefined;
  const candidates = [...HOSTILE_STRINGS, '', 'Bogus', 'yesterday', '2024-13-45T99:99:99Z', 'conn_', 'x'.repeat(5000), 'not a url', 'javascript:alert(1)'];
  for (const c of candidates) {
    if (re && !re.test(c)) out.add(c);
    if (s.enum && !s.enum.includes(c)) out.add(c);
    if (s.maxLength !== undefined && c.length > s.maxLength) out.add(c);
    if (s.minLength !== undefined && c.length < s.minLength) out.add(c);
    if (s.format === 'date-time' && !/^\d{4}-\d{2}-\d{2}T/.test(c)) out.add(c);
    if (s.format === 'uri' && !/^[a-z][a-z0-9+.-]*:/i.test(c)) out.add(c);
  }
  if (s.maxLength !== undefined) out.add('x'.repeat(s.maxLength + 1));
  for (const c of impossibleDates(s)) out.add(c);
  return [...out];
}

/** Dates a date-like pattern lets through but the calendar does not have (the API must refuse, not roll them over). */
function impossibleDates(s: JsonSchema): string[] {
  const re = s.pattern ? safeRegExp(s.pattern) : undefined;
  if (!re || !/\\d\{4\}-\\d\{2\}-\\d\{2\}/.test(s.pattern ?? '')) return [];
  return ['2024-02-30', 'ge2023-02-29', 'lt2024-04-31', '2024-13-01', 'ge2024-00-10', 'ge2024-01-32', 'le2024-01-01T25:00:00Z', 'eq9999-99-99'].filter((c) => re.test(c));
}

function safeRegExp(p: string): RegExp | undefined {
  try {
    return new RegExp(p, 'u');
  } catch {
    return undefined;
  }
}

/** Values that break a (non-string) scalar schema: out of range, not an integer. */
function badNumbers(s: JsonSchema): number[] {
  const out: number[] = [];
  if (s.minimum !== undefined) out.push(s.minimum - 1, -1e12);
  if (s.maximum !== undefined) out.push(s.maximum + 1, 1e300);
  if (s.type === 'integer') out.push(1.5);
  return out.filter((n) => (s.minimum !== undefined && n < s.minimum) || (s.maximum !== undefined && n > s.maximum) || (s.type === 'integer' && !Number.isInteger(n)));
}

/** An invalid value for a property schema: wrong type, or right type with a value the schema refuses. */
function invalidValue(s: JsonSchema): fc.Arbitrary<unknown> | undefined {
  const options: fc.Arbitrary<unknown>[] = [];
  const wrong = wrongTypeValue(s);
  if (wrong) options.push(wrong);
  const types = typesOf(s);
  if (types.size === 1 && types.has('string')) {
    const bad = badStrings(s);
    if (bad.length) options.push(fc.constantFrom(...bad));
  }
  if (types.size === 1 && types.has('number')) {
    const bad = badNumbers(s);
    if (bad.length) options.push(fc.constantFrom(...bad));
  }
  if (types.size === 1 && types.has('array') && s.items) {
    const item = invalidValue(s.items);
    if (item) options.push(item.map((v) => [v]));
    if (s.maxItems !== undefined) options.push(fc.constant(Array.from({ length: s.maxItems + 1 }, () => 'x')));
    if (s.minItems) options.push(fc.constant([]));
  }
  return options.length ? fc.oneof(...options) : undefined;
}

// ---- requests ---------------------------------------------------------------------------------------------------

function fixtureFor(param: string, template: string, fx: Fixtures): string {
  if (param === 'provider') return fx.provider;
  if (param === 'connectionId') return fx.connectionId;
  if (param === 'resourceType') return 'Communication';
  if (param === 'jobId' && template.includes('/enhanced-sync/') && fx.syncJobId) return fx.syncJobId;
  if (param === 'jobId' && template.includes('/bulk-export/') && fx.exportJobId) return fx.exportJobId;
  return `unknown-${param}-0001`;
}

/** A well-formed id nothing has: the route must answer 404 (or 400), never act. */
function unknownFor(param: string, template: string, rand: string): string {
  if (param === 'provider') return `no-such-ehr-${rand.toLowerCase().replace(/[^a-z0-9]/g, '')}`.slice(0, 40);
  if (param === 'connectionId') return `conn_${rand}`;
  if (param === 'resourceType') return 'Bogus';
  if (param === 'jobId' && template.includes('/enhanced-sync/')) return `enhanced-sync-conn_${rand}-00000000-0000-4000-8000-000000000000`;
  if (param === 'jobId' && template.includes('/bulk-export/')) return `bulk-export-conn_${rand}-${rand}`;
  return `unknown-${rand}`;
}

/** A route's path with real values in its parameters. */
export function pathFor(template: string, fx: Fixtures): string {
  return template.replace(/\{([^}]+)\}/g, (_m, name: string) => encodeURIComponent(fixtureFor(name, template, fx)));
}

/** Registered routes the document does not list, with whether they want the API key (asked without it: 401?). */
export async function findUndocumentedRoutes(baseUrl: string, documented: RouteInfo[], fx: Fixtures): Promise<RouteInfo[]> {
  const known = new Set(documented.map((r) => `${r.method} ${r.template}`));
  const missing = apiRoutesRegistered().filter((r) => !known.has(`${r.method} ${r.template}`));
  const authenticated = new Set<string>();
  for (const r of missing) {
    const o = await send(baseUrl, { kind: 'probe', route: r.template, method: r.method, path: pathFor(r.template, fx), headers: {} });
    if (o.status === 401) authenticated.add(`${r.method} ${r.template}`);
  }
  return undocumentedRoutes(missing, documented, (r) => authenticated.has(`${r.method} ${r.template}`));
}

function fillPath(route: RouteInfo, fx: Fixtures, override: Record<string, string> = {}): string {
  return route.template.replace(/\{([^}]+)\}/g, (_m, name: string) => override[name] ?? encodeURIComponent(fixtureFor(name, route.template, fx)));
}

/** A body that satisfies the schema's required properties with fixture values (used only as a base to break). */
function baseBody(s: JsonSchema | undefined, fx: Fixtures): Json {
  const out: Json = {};
  for (const name of s?.required ?? []) {
    const p = s?.properties?.[name] ?? {};
    if (name === 'connectionId') out[name] = fx.connectionId;
    else if (p.enum) out[name] = p.enum[0];
    else if (typesOf(p).has('string')) out[name] = 'x'.repeat(Math.max(1, p.minLength ?? 1, 40));
    else if (typesOf(p).has('number')) out[name] = p.minimum ?? 1;
    else if (typesOf(p).has('boolean')) out[name] = true;
    else if (typesOf(p).has('array')) out[name] = [];
    else out[name] = {};
  }
  return out;
}

function baseQuery(route: RouteInfo, fx: Fixtures): Record<string, string> {
  const q: Record<string, string> = {};
  for (const p of route.query) if (p.required) q[p.name] = p.name === 'connectionId' ? fx.connectionId : 'x';
  return q;
}

function qs(pairs: [string, string][]): string {
  return pairs.length ? `?${pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&')}` : '';
}

function authHeaders(fx: Fixtures): Record<string, string> {
  return { 'x-api-key': fx.apiKey };
}

/** Every method none of the document's templates matching this concrete path accepts. */
function wrongMethods(path: string, routes: RouteInfo[]): string[] {
  const segs = path.split('?')[0]!.split('/');
  const used = new Set<string>();
  for (const r of routes) {
    const t = r.template.split('/');
    if (t.length === segs.length && t.every((s, i) => s.startsWith('{') || s === segs[i])) used.add(r.method);
  }
  return METHODS.filter((m) => !used.has(m));
}

const json = (v: unknown) => Buffer.from(JSON.stringify(v));
const JSON_CT = { 'content-type': 'application/json' };

/** The arbitrary of hostile requests for one route. */
export function hostileRequests(route: RouteInfo, fx: Fixtures, all: RouteInfo[]): fc.Arbitrary<HostileRequest> {
  const name = `${route.method} ${route.template}`;
  const path = fillPath(route, fx);
  const query = baseQuery(route, fx);
  const target = path + qs(Object.entries(query));
  const base = route.body ? baseBody(route.body, fx) : undefined;
  const mk = (kind: string, r: Partial<HostileRequest> & { headers?: Record<string, string> }): HostileRequest => ({
    kind,
    route: name,
    method: r.method ?? route.method,
    path: r.path ?? target,
    headers: { ...authHeaders(fx), ...(r.headers ?? {}) },
    body: r.body,
  });
  const withBody = (b: Buffer | undefined) => (b ? { body: b, headers: JSON_CT } : {});
  // Weighted: the route's own inputs (body fields, query values, ids) get more requests than the generic defects.
  const gens: { arbitrary: fc.Arbitrary<HostileRequest>; weight: number }[] = [];
  const push = (weight: number, ...arbs: fc.Arbitrary<HostileRequest>[]) => arbs.forEach((arbitrary) => gens.push({ arbitrary, weight }));

  // 1. The API key: missing, wrong, almost right (authenticated routes only).
  if (route.authenticated) {
    push(2, 
      fc
        .oneof(
          fc.constant<Record<string, string>>({}),
          fc.string({ minLength: 1, maxLength: 80 }).filter((s) => /^[\x21-\x7e]+$/.test(s)).map((k) => ({ 'x-api-key': k })),
          fc.constant({ 'x-api-key': fx.apiKey.slice(0, -1) }),
          fc.constant({ 'x-api-key': `${fx.apiKey}x` }),
          fc.constant({ 'x-api-key': fx.apiKey.toUpperCase() === fx.apiKey ? `${fx.apiKey}0` : fx.apiKey.toUpperCase() }),
          fc.constant({ authorization: `Bearer ${fx.apiKey}x` }),
          fc.constant({ authorization: `Basic ${Buffer.from(`user:${fx.apiKey}`).toString('base64')}` }),
          fc.constant({ authorization: fx.apiKey }),
          fc.constant({ 'x-api-key': '{"$gt":""}' }),
          fc.constant({ authorization: 'Bearer ' }),
        )
        .map((h) => ({ ...mk('auth', { body: base ? json(base) : undefined }), headers: { ...(base ? JSON_CT : {}), ...h } })),
    );
  }

  // 2. Path parameters: malformed values and well-formed unknown ids.
  if (route.pathParams.length) {
    push(3, 
      fc
        .tuple(fc.constantFrom(...route.pathParams), fc.oneof(hostileString.map((s) => ({ raw: false, s })), fc.constantFrom(...['..%2f..%2f', '%2e%2e', '%252e%252e%252f', '%00', '%', '%zz', '%c0%ae%c0%ae'].map((s) => ({ raw: true, s })))))
        .filter(([p, v]) => v.raw || v.s !== fixtureFor(p, route.template, fx))
        .map(([p, v]) => {
          const value = v.raw ? v.s : encodeURIComponent(v.s);
          return mk('path-param', { path: fillPath(route, fx, { [p]: value }) + qs(Object.entries(query)), ...withBody(base ? json(base) : undefined) });
        }),
      // Real ids of the wrong kind: the export's job id on a sync route and the other way round, a connection id as a job id.
      fc
        .tuple(fc.constantFrom(...route.pathParams), fc.constantFrom(...[fx.syncJobId, fx.exportJobId, fx.connectionId].filter((x): x is string => Boolean(x))))
        .filter(([p, v]) => v !== fixtureFor(p, route.template, fx))
        .map(([p, v]) => mk('unknown-id', { path: fillPath(route, fx, { [p]: encodeURIComponent(v) }) + qs(Object.entries(query)), ...withBody(base ? json(base) : undefined) })),
      fc.tuple(fc.constantFrom(...route.pathParams), fc.stringMatching(/^[A-Za-z0-9]{8,20}$/)).map(([p, rand]) =>
        mk('unknown-id', { path: fillPath(route, fx, { [p]: encodeURIComponent(unknownFor(p, route.template, rand)) }) + qs(Object.entries(query)), ...withBody(base ? json(base) : undefined) }),
      ),
    );
  }

  // 3. Path tricks around the route: traversal, encoded NUL, double encoding, very long paths.
  push(2, 
    fc
      .oneof(
        fc.constantFrom('/..%2f..%2fetc%2fpasswd', '/%2e%2e/%2e%2e/', '%00', '%2500', '/%252e%252e%252f', '/..;/', '/%ff%fe', '/\\..\\..'),
        fc.integer({ min: 2000, max: 8000 }).map((n) => `/${'a'.repeat(n)}`),
        fc.integer({ min: 17_000, max: 100_000 }).map((n) => `/${'%2e'.repeat(Math.ceil(n / 3))}`),
        fc.integer({ min: 50, max: 400 }).map((n) => '/..'.repeat(n)),
      )
      .map((trick) => mk('path-trick', { path: path + trick + qs(Object.entries(query)) })),
  );

  // 3b. Malformed HTTP around the route (Node's parser refuses it before Express: it must still answer in the envelope).
  const key = `X-API-Key: ${fx.apiKey}\r\n`;
  push(
    1,
    fc
      .constantFrom(
        `${route.method} ${target} HTTP/1.1\r\nHost: x\r\n${key}X-Bad: a\u0001b\r\nConnection: close\r\n\r\n`,
        `${route.method} ${target} HTTP/1.1\r\nHost: x\r\n${key}this line has no colon\r\nConnection: close\r\n\r\n`,
        `${route.method} ${path}/\u0000/x HTTP/1.1\r\nHost: x\r\n${key}Connection: close\r\n\r\n`,
        `${route.method} ${path}/a b HTTP/1.1\r\nHost: x\r\n${key}Connection: close\r\n\r\n`,
        `${route.method} ${target} HTTP/9.9\r\nHost: x\r\n${key}Connection: close\r\n\r\n`,
        `${route.method} ${target} HTTP/1.1\r\nHost: x\r\n${key}Content-Length: 5\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n`,
        `${route.method} ${target} HTTP/1.1\r\nHost: x\r\n${key}Content-Length: abc\r\nConnection: close\r\n\r\n`,
        `${route.method} ${target} HTTP/1.1\r\nHost: x\r\n${key}Content-Length: 2\r\nContent-Length: 3\r\nConnection: close\r\n\r\n{}`,
        `${route.method} ${target} HTTP/1.1\r\nHost: x\r\n${key}X-Big: ${'b'.repeat(20_000)}\r\nConnection: close\r\n\r\n`,
        `${route.method} ${target} HTTP/1.1\r\nHost: x\r\n${key}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`,
      )
      .map((raw) => ({ ...mk('malformed-http', {}), raw: Buffer.from(raw, 'latin1') })),
  );

  // 4. A method the path does not have.
  const wrong = wrongMethods(path, all);
  if (wrong.length) push(1, fc.constantFrom(...wrong, 'PROPFIND', 'TRACE', 'FOO', 'CONNECT-ISH').map((method) => mk('wrong-method', { method, ...withBody(base ? json(base) : undefined) })));

  // 5. Bodies that are not JSON, too large, or in an unsupported charset (the parser refuses them on every route).
  push(1, 
    fc
      .oneof(
        fc.constantFrom('{', '{"connectionId":', "{'a':1}", '{"a":1,}', '[1,2', 'NaN', '{"a":undefined}', '\u0000\u0001', 'connectionId=conn_x', '{"a":1}}', '{"a":"\\x00"}'),
        fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify({ v })).chain((s) => fc.integer({ min: 1, max: s.length - 1 }).map((n) => s.slice(0, n))),
        fc.integer({ min: 1000, max: 50_000 }).map((d) => deep(d, 'array').slice(0, -1)),
      )
      .map((raw) => mk('malformed-json', { method: route.method, body: Buffer.from(raw), headers: JSON_CT })),
    fc.integer({ min: BODY_LIMIT + 1, max: BODY_LIMIT * 3 }).map((n) => mk('too-large', { body: Buffer.from(JSON.stringify({ pad: 'x'.repeat(n) })), headers: JSON_CT })),
    fc.constantFrom('utf-16', 'latin1', 'x-evil').map((cs) => mk('bad-charset', { body: json(base ?? { a: 1 }), headers: { 'content-type': `application/json; charset=${cs}` } })),
  );

  // 6. Query parameters: missing required ones, values that break their schema, operators by bracket syntax,
  //    repeated parameters (arrays).
  if (route.query.length) {
    const required = route.query.filter((p) => p.required);
    const breakable = route.query.filter((p) => badStrings(p.schema).length > 0 || badNumbers(p.schema).length > 0);
    if (required.length) {
      push(2, 
        fc.tuple(fc.constantFrom(...required), fc.constantFrom('', '[$gt]', '[$ne]', '[$where]', '.$gt', '[]')).map(([p, suffix]) => {
          const pairs = Object.entries(query).filter(([k]) => k !== p.name);
          if (suffix) pairs.push([`${p.name}${suffix}`, suffix === '[]' ? fx.connectionId : '']);
          return mk('query-missing-or-operator', { path: path + qs(pairs) });
        }),
        fc.constantFrom(...required).map((p) => mk('query-repeated', { path: path + qs([...Object.entries(query), [p.name, query[p.name] ?? 'x']]) })),
      );
    }
    const dated = route.query.filter((p) => impossibleDates(p.schema).length > 0);
    if (dated.length) {
      push(
        2,
        fc
          .constantFrom(...dated)
          .chain((p) => fc.constantFrom(...impossibleDates(p.schema)).map((v) => [p.name, v] as const))
          .map(([n, v]) => mk('query-impossible-date', { path: path + qs([...Object.entries(query).filter(([k]) => k !== n), [n, v]]) })),
      );
    }
    if (breakable.length) {
      push(3, 
        fc
          .constantFrom(...breakable)
          .chain((p) => fc.constantFrom(...[...badStrings(p.schema), ...badNumbers(p.schema).map(String), ...(typesOf(p.schema).has('number') ? ['abc', 'Infinity', ''] : [])]).map((v) => [p.name, v] as const))
          .map(([n, v]) => mk('query-bad-value', { path: path + qs([...Object.entries(query).filter(([k]) => k !== n), [n, v]]) })),
      );
    }
  }

  // 7. Body schema: wrong types, bad values, missing required, unknown and operator keys, deep nesting, huge
  //    strings just under the size limit, wrong top-level types, wrong content types.
  if (route.body && base) {
    const props = Object.entries(route.body.properties ?? {});
    // A `since` in the future is refused too (it would move incremental sync points past unsynced changes).
    const invalid = props.map(([k, s]) => [k, k === 'since' && s.format === 'date-time' ? fc.oneof(invalidValue(s) ?? fc.constant(null), fc.constantFrom('2999-01-01T00:00:00Z', '2100-02-28T12:00:00+01:00')) : invalidValue(s)] as const).filter((x): x is readonly [string, fc.Arbitrary<unknown>] => x[1] !== undefined);
    if (invalid.length) {
      push(6, fc.oneof(...invalid.map(([k, arb]) => arb.map((v) => mk('body-bad-field', { body: json({ ...base, [k]: v }), headers: JSON_CT })))));
    }
    if (route.body.required?.length) {
      push(2, fc.subarray(route.body.required, { minLength: 1 }).map((drop) => mk('body-missing-field', { body: json(Object.fromEntries(Object.entries(base).filter(([k]) => !drop.includes(k)))), headers: JSON_CT })));
    }
    if (route.body.additionalProperties === false) {
      push(2, 
        fc
          .tuple(fc.oneof(fc.constantFrom('$where', '$gt', '__proto__', 'constructor', 'prototype', '$set', 'isAdmin', '_id'), fc.string({ minLength: 1, maxLength: 12 }).filter((k) => !(k in (route.body!.properties ?? {})))), fc.oneof(operatorObject, fc.jsonValue({ maxDepth: 2 })))
          .map(([k, v]) => mk('body-extra-field', { body: Buffer.from(JSON.stringify(base).replace(/^\{/, `{${JSON.stringify(k)}:${JSON.stringify(v) ?? 'null'}${Object.keys(base).length ? ',' : ''}`)), headers: JSON_CT })),
        fc.integer({ min: 1000, max: 20_000 }).map((d) => mk('body-deep-nesting', { body: Buffer.from(`{"nested":${deep(d, d % 2 ? 'array' : 'object')}${Object.keys(base).length ? ',' : ''}${JSON.stringify(base).slice(1)}`), headers: JSON_CT })),
        fc.integer({ min: BODY_LIMIT - 2000, max: BODY_LIMIT - 200 }).map((n) => {
          const b = JSON.stringify({ ...base, pad: '' });
          return mk('body-just-under-limit', { body: Buffer.from(b.replace('"pad":""', `"pad":"${'x'.repeat(Math.max(0, n - b.length))}"`)), headers: JSON_CT });
        }),
      );
    }
    push(2, 
      fc.constantFrom('null', '[]', '"a string"', '42', 'true', JSON.stringify([base]), deep(100_000, 'array')).map((raw) => mk('body-wrong-type', { body: Buffer.from(raw), headers: JSON_CT })),
      fc
        .constantFrom('text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml', 'application/octet-stream', '')
        .map((ct) => mk('wrong-content-type', { body: ct.startsWith('application/x-www') ? Buffer.from(new URLSearchParams(base as Record<string, string>).toString() || 'a=1') : json(base), headers: ct ? { 'content-type': ct } : { 'content-type': '' } })),
    );
  }

  // 8. Idempotency-Key: malformed, with an otherwise valid body (the key must be refused before anything starts).
  if (route.idempotencyKey && base) {
    push(3, 
      fc
        .oneof(
          fc.constantFrom('', 'short', 'x'.repeat(65), 'x'.repeat(500), '{"$gt":""}', '$where-key-123', '../../../../etc', 'key with spaces', 'key%00withnul', 'key;drop'),
          // Invalid under the one pattern (src/shared/idempotencyKey.ts): a dot is a valid character there.
          fc.string({ minLength: 8, maxLength: 40 }).filter((s) => /^[\x20-\x7e]+$/.test(s) && /[^A-Za-z0-9_.-]/.test(s.trim()) && s.trim().length > 0),
        )
        .map((key) => mk('idempotency-key', { body: json(base), headers: { ...JSON_CT, 'idempotency-key': key } })),
    );
  }

  return fc.oneof(...gens);
}

/** `perRoute` requests for each route, seeded: the same seed gives the same requests. */
export function generateHostile(routes: RouteInfo[], fx: Fixtures, perRoute: number, seed: number): HostileRequest[] {
  const out: HostileRequest[] = [];
  routes.forEach((r, i) => {
    out.push(...fc.sample(hostileRequests(r, fx, routes), { seed: (seed + i * 7919) | 0, numRuns: perRoute }));
  });
  return out;
}

// ---- sending and judging -----------------------------------------------------------------------------------------

/** Writes raw bytes and reads the answer until the server closes the connection. */
function sendRaw(url: URL, req: HostileRequest, timeoutMs: number): Promise<Outcome> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (error?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const text = Buffer.concat(chunks).toString('utf8');
      const [head = '', ...rest] = text.split('\r\n\r\n');
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1];
      if (!status) return resolve({ req, ms: Date.now() - t0, error: error ?? `no HTTP answer (${text.slice(0, 40)})` });
      resolve({ req, ms: Date.now() - t0, status: Number(status), contentType: /\r\ncontent-type: *([^\r]*)/i.exec(head)?.[1] ?? '', text: rest.join('\r\n\r\n') });
    };
    const socket = connect({ host: url.hostname, port: Number(url.port) }, () => socket.write(req.raw!));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => finish());
    socket.on('close', () => finish());
    socket.on('error', (err) => finish(err.message));
    const timer = setTimeout(() => finish(`no answer within ${timeoutMs} ms`), timeoutMs);
  });
}

/** Sends one request as is (raw target, raw body) and reads the answer; a hang ends at timeoutMs. */
export function send(baseUrl: string, req: HostileRequest, timeoutMs = 15_000): Promise<Outcome> {
  const url = new URL(baseUrl);
  if (req.raw) return sendRaw(url, req, timeoutMs);
  const t0 = Date.now();
  return new Promise((resolve) => {
    let settled = false;
    const done = (o: Omit<Outcome, 'req' | 'ms'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ req, ms: Date.now() - t0, ...o });
    };
    const headers: Record<string, string | number> = { ...req.headers };
    if (headers['content-type'] === '') delete headers['content-type'];
    if (req.body) headers['content-length'] = req.body.length;
    const r = httpRequest({ host: url.hostname, port: url.port, method: req.method, path: req.path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => done({ status: res.statusCode, contentType: String(res.headers['content-type'] ?? ''), text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (err) => done({ status: res.statusCode, error: err.message }));
    });
    const timer = setTimeout(() => {
      done({ error: `no answer within ${timeoutMs} ms` });
      r.destroy();
    }, timeoutMs);
    r.on('error', (err) => done({ error: err.message }));
    if (req.body) r.end(req.body);
    else r.end();
  });
}

/** Why an answer is not acceptable, or undefined when it is a 4xx in the error envelope with a message. */
export function judge(o: Outcome): string | undefined {
  if (o.error) return o.error;
  if (o.status === undefined || o.status < 400 || o.status >= 500) return `status ${o.status}`;
  if (!/application\/json/.test(o.contentType ?? '')) return `not JSON (${o.contentType || 'no content type'})`;
  let body: { success?: unknown; error?: { code?: unknown; message?: unknown } };
  try {
    body = JSON.parse(o.text ?? '');
  } catch {
    return 'body is not JSON';
  }
  if (body.success !== false) return 'success is not false';
  if (typeof body.error?.code !== 'string' || !body.error.code) return 'no error code';
  if (typeof body.error?.message !== 'string' || !body.error.message) return 'no error message';
  return undefined;
}

/** Sends every request with a few in flight at once; returns the outcomes in order. */
export async function sendAll(baseUrl: string, reqs: HostileRequest[], concurrency = 4, timeoutMs = 15_000): Promise<Outcome[]> {
  const out: Outcome[] = new Array(reqs.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < reqs.length) {
        const i = next++;
        out[i] = await send(baseUrl, reqs[i]!, timeoutMs);
      }
    }),
  );
  return out;
}

/** One line per failure, without bodies (which could be large); the API's message says what it refused. */
export function describeFailure(o: Outcome, reason: string): string {
  let message = '';
  try {
    message = String((JSON.parse(o.text ?? '') as { error?: { message?: string } }).error?.message ?? '');
  } catch {
    message = (o.text ?? '').slice(0, 80);
  }
  return `${o.req.method} ${o.req.route.slice(o.req.route.indexOf(' ') + 1)} [${o.req.kind}] ${o.req.path.slice(0, 100)} → ${o.status ?? '-'} ${reason}${message ? `: ${message.slice(0, 120)}` : ''}`;
}
