import { loggableUrl } from '../../logger';
import { FhirRequestError } from '../errors';

/** One file of a completed export's manifest. */
export interface ManifestFile {
  type: string;
  /** Absolute (resolved against the status URL); not yet checked against the allowed origins (done on download). */
  url: string;
  count?: number;
}

/** A completed export's manifest (Bulk Data IG v2), with only what a client acts on. No patient data. */
export interface ExportManifest {
  /** ISO instant: everything changed up to it is included (the next export's `_since`). */
  transactionTime: string;
  /** true: downloads carry the bearer token (only ever to the FHIR server's origin). */
  requiresAccessToken: boolean;
  output: ManifestFile[];
  /** NDJSON files of OperationOutcomes (partial success). */
  error: ManifestFile[];
  /** With `_since`: NDJSON files of Bundles whose entries are DELETE requests. */
  deleted: ManifestFile[];
}

interface RawManifest {
  transactionTime?: unknown;
  requiresAccessToken?: unknown;
  output?: unknown;
  error?: unknown;
  deleted?: unknown;
}

/**
 * Reads the body of a 200 status answer. A manifest without transactionTime or output is refused (not retryable):
 * without transactionTime there is no safe next `_since`. File entries without a URL are skipped.
 */
export function parseManifest(body: unknown, statusUrl: string): ExportManifest {
  const m = body as RawManifest | undefined;
  const time = typeof m?.transactionTime === 'string' ? Date.parse(m.transactionTime) : NaN;
  if (!m || typeof m !== 'object' || Number.isNaN(time) || !Array.isArray(m.output)) {
    throw new FhirRequestError(
      'FHIR_REQUEST_FAILED',
      `The export manifest from ${loggableUrl(statusUrl)} is not valid (no transactionTime instant or no output list): the export cannot be read. Retry the job; if it recurs, report it to the server's operator.`,
      200,
      false,
    );
  }
  const files = (list: unknown): ManifestFile[] =>
    (Array.isArray(list) ? list : [])
      .filter((f): f is { type?: unknown; url: string; count?: unknown } => !!f && typeof (f as { url?: unknown }).url === 'string')
      .flatMap((f) => {
        let url: string;
        try {
          url = new URL(f.url, statusUrl).href;
        } catch {
          return []; // not a URL at all: nothing to fetch
        }
        return [{ type: typeof f.type === 'string' ? f.type : 'unknown', url, ...(typeof f.count === 'number' ? { count: f.count } : {}) }];
      });
  return {
    transactionTime: new Date(time).toISOString(),
    requiresAccessToken: m.requiresAccessToken === true,
    output: files(m.output),
    error: files(m.error),
    deleted: files(m.deleted),
  };
}
