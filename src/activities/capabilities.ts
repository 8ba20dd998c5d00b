import type { HeartbeatDeclarations } from './heartbeats';
import type { CapabilityStatement } from '../auth/discovery';
import type { FhirClient } from '../fhir/client';
import { rateLimitFor, type ProviderRegistry } from '../providers/registry';
import type { ConnectionStore } from '../store/connections';
import { fhirConnectionOf } from './fhirConnection';

/** The spec's capabilities shape, plus what it was derived from. Contains no patient data. */
export interface CapabilitiesSummary {
  bulkExport: boolean;
  diagnosticReports: boolean;
  carePlans: boolean;
  encounters: boolean;
  communications: boolean;
  tasks: boolean;
  rateLimit: string;
  telehealth: boolean;
  fhirVersion?: string;
  fhirEndpoint: string;
  resourceTypes: string[];
  smart: { capabilities: string[]; pkceS256: boolean; backendServices: boolean };
  checkedAt: string;
}

export interface CapabilitiesDeps {
  connections: ConnectionStore;
  fhir: FhirClient;
  registry: ProviderRegistry;
}

const SEARCH_OR_READ = new Set(['search-type', 'read']);

/** Asks the connection's FHIR server what it can do: its CapabilityStatement and its SMART configuration. */
export function createCapabilitiesActivities({ connections, fhir, registry }: CapabilitiesDeps) {
  return {
    async getCapabilities(input: { connectionId: string }): Promise<CapabilitiesSummary> {
      const connection = await connections.get(input.connectionId);
      const provider = registry.get(connection.provider);
      const target = fhirConnectionOf(connection);
      const [statement, smart] = await Promise.all([
        fhir.getJson<CapabilityStatement>(target, 'metadata', { auth: false, kind: 'capabilities' }),
        fhir
          .getJson<Record<string, unknown>>(target, '.well-known/smart-configuration', { auth: false, kind: 'capabilities', headers: { accept: 'application/json' } })
          .catch(() => ({}) as Record<string, unknown>),
      ]);
      const rest = statement.rest?.find((r) => (r.mode ?? 'server') === 'server');
      const resources = new Map((rest?.resource ?? []).map((r) => [r.type, r]));
      const supports = (type: string) => (resources.get(type)?.interaction ?? []).some((i) => SEARCH_OR_READ.has(i.code));
      const operations = [
        ...(rest?.operation ?? []),
        ...(resources.get('Patient')?.operation ?? []),
        ...(resources.get('Group')?.operation ?? []),
      ];
      const declaresExport = operations.some((o) => o.name.replace(/^\$/, '') === 'export' || /\/export$/.test(o.definition ?? ''));
      const smartCaps = Array.isArray(smart.capabilities) ? smart.capabilities.filter((c): c is string => typeof c === 'string') : [];
      const challengeMethods = Array.isArray(smart.code_challenge_methods_supported) ? smart.code_challenge_methods_supported : [];
      const authMethods = Array.isArray(smart.token_endpoint_auth_methods_supported) ? smart.token_endpoint_auth_methods_supported : [];
      return {
        bulkExport: provider.capabilities.bulkExport && declaresExport,
        diagnosticReports: supports('DiagnosticReport'),
        carePlans: supports('CarePlan'),
        encounters: supports('Encounter'),
        communications: supports('Communication'),
        tasks: supports('Task'),
        // The practice's own terms when it has them (rateLimit.perBaseUrl), else the provider's.
        rateLimit: rateLimitFor(provider, connection.fhirBaseUrl).display,
        telehealth: provider.capabilities.telehealth && supports('Encounter'),
        fhirVersion: statement.fhirVersion,
        fhirEndpoint: connection.fhirBaseUrl,
        resourceTypes: [...resources.keys()].filter(supports).sort(),
        smart: {
          capabilities: smartCaps,
          pkceS256: challengeMethods.includes('S256'),
          backendServices: smartCaps.includes('client-confidential-asymmetric') || authMethods.includes('private_key_jwt'),
        },
        checkedAt: new Date().toISOString(),
      };
    },
  };
}

/** Heartbeats (src/activities/heartbeats.ts): one metadata request, kept alive by the interceptor. */
export const capabilitiesHeartbeats: HeartbeatDeclarations<ReturnType<typeof createCapabilitiesActivities>> = { getCapabilities: 'keepalive' };
