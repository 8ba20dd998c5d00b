/** CapabilityStatement and SMART configuration documents. */
import { RESOURCE_TYPES } from '../types';
import { SEARCH_PARAMS } from './params';

export const SUPPORTED_SCOPES = [
  'openid',
  'fhirUser',
  'launch/patient',
  'offline_access',
  'online_access',
  'patient/*.read',
  'patient/*.rs',
  'user/*.read',
  'user/*.rs',
  'system/*.read',
  'system/*.rs',
  ...RESOURCE_TYPES.flatMap((t) => [`patient/${t}.read`, `patient/${t}.rs`, `system/${t}.read`, `system/${t}.rs`]),
];

/** `root`: where the practice's OAuth endpoints are (the origin, or the practice's base URL). */
export function smartConfiguration(root: string): Record<string, unknown> {
  return {
    issuer: root,
    authorization_endpoint: `${root}/oauth/authorize`,
    token_endpoint: `${root}/oauth/token`,
    grant_types_supported: ['authorization_code', 'client_credentials', 'refresh_token'],
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
    token_endpoint_auth_signing_alg_values_supported: ['RS384', 'ES384'],
    scopes_supported: SUPPORTED_SCOPES,
    response_types_supported: ['code'],
    code_challenge_methods_supported: ['S256'],
    capabilities: [
      'launch-standalone',
      'client-public',
      'client-confidential-symmetric',
      'client-confidential-asymmetric',
      'context-standalone-patient',
      'permission-offline',
      'permission-online',
      'permission-patient',
      'permission-v1',
      'permission-v2',
    ],
  };
}

const TYPE_OF_PARAM: Record<string, string> = { token: 'token', date: 'date', string: 'string', reference: 'reference' };

export interface CapabilityKnobs {
  unsupportedTypes: readonly string[];
  noPatientSearchTypes: readonly string[];
  openMode: boolean;
}

const NO_KNOBS: CapabilityKnobs = { unsupportedTypes: [], noPatientSearchTypes: [], openMode: false };

/** `at.root`: where the OAuth endpoints are; `at.base`: the FHIR base URL. */
export function capabilityStatement(
  at: { root: string; base: string },
  software: { version: string },
  knobs: CapabilityKnobs = NO_KNOBS,
): Record<string, unknown> {
  const { root, base } = at;
  const served = RESOURCE_TYPES.filter((t) => !knobs.unsupportedTypes.includes(t));
  const byPatient = (type: string, name: string) => !(knobs.noPatientSearchTypes.includes(type) && (name === 'patient' || name === 'subject'));
  const security = {
    cors: false,
    service: [
      {
        coding: [
          { system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR', display: 'SMART-on-FHIR' },
        ],
        text: 'OAuth2 using SMART-on-FHIR profile (see http://docs.smarthealthit.org)',
      },
    ],
    extension: [
      {
        url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris',
        extension: [
          { url: 'authorize', valueUri: `${root}/oauth/authorize` },
          { url: 'token', valueUri: `${root}/oauth/token` },
        ],
      },
    ],
  };
  return {
    resourceType: 'CapabilityStatement',
    id: 'ecw-sandbox',
    status: 'active',
    date: '2026-01-01',
    publisher: 'ehr-sync local sandbox',
    kind: 'instance',
    software: { name: 'eClinicalWorks FHIR R4 sandbox (local stand-in)', version: software.version },
    implementation: { description: 'Local eClinicalWorks FHIR R4 sandbox', url: base },
    fhirVersion: '4.0.1',
    format: ['json', 'application/fhir+json'],
    instantiates: ['http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data'],
    rest: [
      {
        mode: 'server',
        // An open server advertises no OAuth endpoints.
        ...(knobs.openMode ? {} : { security }),
        resource: [
          ...served.map((type) => ({
            type,
            interaction: [{ code: 'read' }, { code: 'search-type' }],
            versioning: 'versioned',
            readHistory: false,
            searchParam: [
              { name: '_id', type: 'token', documentation: 'Logical id (comma separated list)' },
              { name: '_lastUpdated', type: 'date', documentation: 'meta.lastUpdated (prefixes ge, gt, le, lt, eq)' },
              ...SEARCH_PARAMS[type].filter((p) => byPatient(type, p.name)).map((p) => ({ name: p.name, type: TYPE_OF_PARAM[p.kind], documentation: p.documentation })),
            ],
            ...(type === 'Patient'
              ? {
                  operation: [
                    { name: 'export', definition: 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export' },
                  ],
                }
              : {}),
          })),
          {
            type: 'Group',
            interaction: [{ code: 'read' }, { code: 'search-type' }],
            operation: [{ name: 'export', definition: 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export' }],
          },
        ],
        operation: [{ name: 'export', definition: 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export' }],
      },
    ],
  };
}
