import { loggableUrl } from '../logger';
import { FhirRequestError, operationOutcomeText } from './errors';

/**
 * A bulk kick-off refused because of one of the types in `_type` (Bulk Data: a server may reject a type it does
 * not have, or one outside the patient compartment in a Patient/Group export). Servers say so only in words, e.g.
 * `The requested resource type "Communication" is not available on this server`, so the refused types are the
 * requested ones the OperationOutcome names. Returns undefined when the refusal names none of them.
 */
export function refusedTypesError(status: number, bodyText: string, requested: readonly string[], url: string): FhirRequestError | undefined {
  if (requested.length === 0) return undefined;
  if (status < 400 || status >= 500 || status === 401 || status === 429) return undefined;
  let body: unknown;
  try {
    body = JSON.parse(bodyText);
  } catch {
    return undefined;
  }
  const text = operationOutcomeText(body);
  if (!text) return undefined;
  const refused = requested.filter((t) => new RegExp(`(^|[^A-Za-z])${t}([^A-Za-z]|$)`).test(text));
  if (refused.length === 0) return undefined;
  const list = refused.join(', ');
  const one = refused.length === 1;
  return new FhirRequestError(
    'FHIR_REQUEST_FAILED',
    `The FHIR server refused the bulk export because of resource type${one ? '' : 's'} ${list}: kick-off ${loggableUrl(url)} answered ${status} (${text}). ` +
      `Remove ${list} from resourceTypes and start the export again, or omit resourceTypes to export every type the server has ` +
      `(GET /api/ehr/{provider}/capabilities lists the types it supports; a Patient or Group export takes only types it can search by patient).`,
    status,
    false,
  );
}
