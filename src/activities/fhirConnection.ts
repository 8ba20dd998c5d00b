import type { FhirConnection } from '../fhir/connection';
import type { ConnectionDoc } from '../store/connections';

/** The stored connection as the FHIR layer sees it (src/fhir knows nothing of the store). */
export function fhirConnectionOf(doc: Pick<ConnectionDoc, '_id' | 'provider' | 'fhirBaseUrl' | 'kind'>): FhirConnection {
  return { id: doc._id, provider: doc.provider, baseUrl: doc.fhirBaseUrl, usesToken: doc.kind !== 'open' };
}
