import { AppError } from '../errors';
import type { ProviderRegistry } from '../providers/registry';
import { newConnectionId, type ConnectionDoc, type ConnectionStore } from '../store/connections';
import type { SmartDiscovery } from './discovery';
import type { SmartAuth } from './smartAuth';

export interface OpenConnectionInput {
  fhirBaseUrl?: string;
  /** The patient whose compartment a sync reads (as a patient launch would have chosen); none: the whole server. */
  patientId?: string;
}

/**
 * `open` connections: FHIR servers that need no authorization (public test servers, a FHIR store behind a private
 * network). No token is ever requested or sent on them (FhirClient). A provider must opt in with
 * `allowOpenConnections`, because such a connection reads whatever the server serves to anyone.
 */
export class OpenConnections {
  constructor(
    private readonly deps: { registry: ProviderRegistry; discovery: SmartDiscovery; connections: ConnectionStore; smartAuth: Pick<SmartAuth, 'resolveBaseUrl'> },
  ) {}

  async create(providerId: string, input: OpenConnectionInput): Promise<ConnectionDoc> {
    const provider = this.deps.registry.get(providerId);
    if (!provider.allowOpenConnections) {
      throw new AppError(
        'FORBIDDEN',
        `Provider ${provider.id} does not allow open connections (FHIR servers without authorization). Set "allowOpenConnections": true in its provider configuration (EHR_PROVIDERS_JSON or EHR_PROVIDERS_FILE) to allow them, or connect through SMART (POST /api/ehr/${provider.id}/authorize or …/connections/backend).`,
        { status: 403 },
      );
    }
    const fhirBaseUrl = this.deps.smartAuth.resolveBaseUrl(provider, input.fhirBaseUrl);
    // Nothing is stored for a base URL that is not a FHIR server: its CapabilityStatement must be readable.
    await this.deps.discovery.capabilityStatement(fhirBaseUrl);
    return this.deps.connections.create({
      _id: newConnectionId(),
      provider: provider.id,
      kind: 'open',
      fhirBaseUrl,
      clientId: '',
      scopes: [],
      ...(input.patientId ? { patientId: input.patientId } : {}),
    });
  }
}
