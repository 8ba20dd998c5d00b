import { z } from 'zod';
import { ClientIdSchema } from '../auth/clientId';
import { R4ResourceTypeSchema, R4_RESOURCE_TYPES } from '../fhir/resourceTypes';

/**
 * A provider is data, not code: endpoints, OAuth/SMART settings, scopes, rate limits and capabilities.
 * eClinicalWorks is built in (registry.ts); more SMART-on-FHIR servers are added through EHR_PROVIDERS_FILE
 * or EHR_PROVIDERS_JSON with this same shape.
 */
export const STANDARD_RESOURCE_TYPES = [
  'Patient',
  'Observation',
  'Condition',
  'MedicationRequest',
  'AllergyIntolerance',
  'Immunization',
  'Procedure',
] as const;
export const ENHANCED_RESOURCE_TYPES = ['DiagnosticReport', 'CarePlan', 'Encounter', 'Communication', 'Task'] as const;
export const ALL_RESOURCE_TYPES = [...STANDARD_RESOURCE_TYPES, ...ENHANCED_RESOURCE_TYPES] as const;
export type ResourceType = (typeof ALL_RESOURCE_TYPES)[number];
/** A provider may list any R4 type as standard or enhanced (the 12 above are only eClinicalWorks' defaults). */
export const ResourceTypeSchema = R4ResourceTypeSchema;
/** What a request may list: any R4 type, each at most once. */
export const RequestedTypesSchema = z
  .array(R4ResourceTypeSchema)
  .max(R4_RESOURCE_TYPES.length)
  .refine((types) => new Set(types).size === types.length, 'must not repeat a type');

/**
 * One quota that a set of requests shares. `shareBy` says which requests share it: all requests to the provider,
 * or all requests to one FHIR base URL (eClinicalWorks practices each have their own base URL and quota).
 */
export const QuotaSchema = z.discriminatedUnion('kind', [
  z.object({
    name: z.string().min(1),
    kind: z.literal('token-bucket'),
    shareBy: z.enum(['provider', 'baseUrl']).default('provider'),
    ratePerSecond: z.number().positive(),
    burst: z.number().int().positive(),
  }),
  z.object({
    name: z.string().min(1),
    kind: z.literal('fixed-window'),
    shareBy: z.enum(['provider', 'baseUrl']).default('provider'),
    limit: z.number().int().positive(),
    windowSeconds: z.number().int().positive(),
    /** After a 429 the server refuses the rest of the window: wait for the next window, not just Retry-After. */
    blockRestOfWindowOn429: z.boolean().default(false),
  }),
]);
export type Quota = z.output<typeof QuotaSchema>;

/** `https://host[:port]` with nothing after it (a trailing slash at most). */
function isOriginOnly(url: string): boolean {
  const u = new URL(url);
  return u.pathname === '/' && !u.search && !u.hash && !u.username && !u.password && !/[?#]$/.test(url);
}

export const ProviderSchema = z.object({
  id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,39}$/, 'provider ids are lowercase letters, digits and dashes'),
  name: z.string().min(1),
  fhirVersion: z.literal('R4').default('R4'),
  endpoints: z.object({
    /** The base URL used when a connection does not name its own (each practice may have its own). */
    default: z.url(),
    production: z.url().optional(),
    sandbox: z.url().optional(),
  }),
  /** Other base URLs a connection may use: exact URLs or `https://host/prefix/*` patterns. */
  allowedBaseUrls: z.array(z.string()).default([]),
  oauth: z.object({
    clientId: ClientIdSchema,
    clientSecret: z.string().min(1).optional(),
    redirectUri: z.url(),
    scopes: z.array(z.string()).min(1),
    backendScopes: z.array(z.string()).default(['system/*.read']),
  }),
  rateLimit: z.object({
    /** Human-readable, as the capabilities endpoint shows it. */
    display: z.string(),
    quotas: z.array(QuotaSchema).min(1),
    /**
     * Quotas of particular base URLs (practices) that differ from `quotas`: an exact base URL or a
     * `https://host/prefix/*` pattern; the first entry that matches a connection's base URL replaces `quotas` for
     * it (e.g. one practice on 250/min, another with a daily cap). A quota shared by base URL is its own budget per
     * base URL either way.
     */
    perBaseUrl: z
      .array(z.object({ baseUrl: z.string().min(1), display: z.string().optional(), quotas: z.array(QuotaSchema).min(1) }))
      .default([])
      // A practice's own quotas are its own budget: keyed by its base URL whatever `shareBy` says.
      .transform((list) => list.map((e) => ({ ...e, quotas: e.quotas.map((q) => ({ ...q, shareBy: 'baseUrl' as const })) }))),
  }),
  capabilities: z.object({
    bulkExport: z.boolean(),
    telehealth: z.boolean().default(false),
  }),
  /**
   * Origins (`https://host[:port]`) besides the FHIR server's own from which bulk export files may be fetched:
   * object stores that serve presigned file URLs, directly in the manifest or as a redirect target. Files on any
   * other origin fail the export, naming the host. These origins never receive the bearer token.
   */
  exportStorageOrigins: z
    .array(z.url({ protocol: /^https?$/ }).refine(isOriginOnly, 'must be an origin only (scheme, host and port), such as https://storage.example.com'))
    .default([])
    .transform((list) => list.map((u) => new URL(u).origin)),
  /**
   * Allows `open` connections (POST /api/ehr/:provider/connections/open): FHIR servers that need no authorization,
   * such as public test servers. Off by default: requests on them carry no token and reach any patient's data.
   */
  allowOpenConnections: z.boolean().default(false),
  resourceTypes: z
    .object({
      standard: z.array(ResourceTypeSchema).default([...STANDARD_RESOURCE_TYPES]),
      enhanced: z.array(ResourceTypeSchema).default([...ENHANCED_RESOURCE_TYPES]),
    })
    .default({ standard: [...STANDARD_RESOURCE_TYPES], enhanced: [...ENHANCED_RESOURCE_TYPES] }),
});
export type Provider = z.output<typeof ProviderSchema>;
export type ProviderInput = z.input<typeof ProviderSchema>;
