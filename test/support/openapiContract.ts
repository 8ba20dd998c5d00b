import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { openApiDocument } from '../../src/api/openapi';

/**
 * Checks an answer of the API against its OpenAPI document: the route (method + path template) must be documented
 * with the status that came back, and a JSON body must fit that status's schema. A request to a route the document
 * does not have must get the 404 envelope (what the server answers for unknown routes). Used by the integration
 * tests' HTTP helper (test/support/stack.ts), so every answer any test receives is checked.
 */
type Json = Record<string, unknown>;
interface Op {
  responses: Record<string, { content?: Record<string, { schema: Json }> }>;
}

const doc = openApiDocument() as { paths: Record<string, Record<string, Op>> };
const ajv = new Ajv2020({ allErrors: true, strict: false });
addFormats(ajv);

interface Route {
  template: string;
  regex: RegExp;
  literalSegments: number;
}
const routes: Route[] = Object.keys(doc.paths).map((template) => {
  const pattern = template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}/]+\}/g, '[^/]+');
  return { template, regex: new RegExp(`^${pattern}$`), literalSegments: template.split('/').filter((s) => s && !s.startsWith('{')).length };
});

const validators = new Map<string, ValidateFunction>();
function validatorFor(key: string, schema: Json): ValidateFunction {
  let v = validators.get(key);
  if (!v) {
    v = ajv.compile(schema);
    validators.set(key, v);
  }
  return v;
}

const NOT_FOUND_ROUTE = validatorFor('unknown route', {
  type: 'object',
  required: ['success', 'error'],
  properties: { success: { const: false }, error: { type: 'object', required: ['code', 'message'], properties: { code: { const: 'NOT_FOUND' } } } },
});

/** The path template a request path matches; the most literal one wins (as Express's route order does here). */
export function matchRoute(path: string, method: string): { template: string; op: Op } | undefined {
  const clean = `/${path.replace(/^\/+/, '').split(/[?#]/)[0]}`;
  const candidates = routes.filter((r) => r.regex.test(clean) && doc.paths[r.template]![method.toLowerCase()]).sort((a, b) => b.literalSegments - a.literalSegments);
  const route = candidates[0];
  return route ? { template: route.template, op: doc.paths[route.template]![method.toLowerCase()]! } : undefined;
}

/** What is wrong with this answer, by the document; empty when it conforms. */
export function contractProblems(method: string, path: string, status: number, contentType: string | undefined, body: unknown): string[] {
  const match = matchRoute(path, method);
  const isJson = /^application\/(?:[\w.+-]+\+)?json\b/.test(contentType ?? '');
  if (!match) {
    if (status === 404 && isJson && NOT_FOUND_ROUTE(body)) return [];
    // Node's HTTP parser answers these before any route is chosen, for any path.
    if ([400, 408, 431].includes(status)) return [];
    return [`${method} ${path} is not in the OpenAPI document, yet it was answered ${status} (not the unknown-route 404)`];
  }
  const where = `${method.toUpperCase()} ${match.template} → ${status}`;
  const response = match.op.responses[String(status)];
  if (!response) return [`${where}: status ${status} is not documented (documented: ${Object.keys(match.op.responses).join(', ')})`];
  const media = Object.keys(response.content ?? {});
  const type = (contentType ?? '').split(';')[0]!.trim();
  if (media.length && !media.includes(type)) return [`${where}: content type ${type || '(none)'} is not documented (documented: ${media.join(', ')})`];
  const schema = response.content?.[type]?.schema;
  if (!schema || !isJson) return [];
  const validate = validatorFor(`${where} ${type}`, schema);
  if (validate(body)) return [];
  return (validate.errors ?? []).map((e) => `${where}: body${e.instancePath || ''} ${e.message ?? 'is invalid'}${e.params && Object.keys(e.params).length ? ` ${JSON.stringify(e.params)}` : ''}`);
}

/** Throws when the answer does not conform, naming every problem (the test that got it fails). */
export function assertConforms(method: string, path: string, status: number, contentType: string | undefined, body: unknown): void {
  const problems = contractProblems(method, path, status, contentType, body);
  if (problems.length) throw new Error(`The answer does not match the OpenAPI document:\n  ${problems.slice(0, 10).join('\n  ')}`);
}
