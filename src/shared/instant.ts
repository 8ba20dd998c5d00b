import { z } from 'zod';

/**
 * The one schema of an instant (FHIR `instant`, ISO 8601): date, time to the second at least, and a zone (Z or an
 * offset). A bare date or a local time is refused: it cannot be a sync point or a `_since`. Used by the API's
 * bodies and by the FHIR client (Bundle meta.lastUpdated).
 */
export const InstantSchema = z.iso.datetime({ offset: true, error: 'must be an ISO 8601 date-time such as 2024-01-01T00:00:00Z' });

/** True for a valid instant (see InstantSchema). */
export function isInstant(value: unknown): value is string {
  return InstantSchema.safeParse(value).success;
}
