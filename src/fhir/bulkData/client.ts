import type { Request as GotRequest } from 'got';
import { AppError } from '../../errors';
import { loggableUrl } from '../../logger';
import { statusError, toFhirError, type FhirClient } from '../client';
import type { FhirConnection } from '../connection';
import { FhirRequestError } from '../errors';
import { splitLines, type NdjsonLine } from '../ndjson';
import { refusedTypesError } from '../refusedTypes';
import { normalizeBaseUrl, urlOnOrigins } from '../urls';
import { readExportStatus, type ExportStatus } from './status';

export type ExportLevel = 'Patient' | 'Group' | 'System';

export interface KickOffRequest {
  level: ExportLevel;
  /** Required for a Group export. */
  groupId?: string;
  /** `_type`; empty = every type the server has (no `_type`). */
  types: readonly string[];
  /** `_since` (ISO instant). */
  since?: string;
  signal?: AbortSignal;
}

/** An open export file: its lines (with byte offsets, for resuming) and a way to stop reading early. */
export interface ExportFileStream {
  lines: AsyncIterable<NdjsonLine>;
  close(): void;
}

const STATUS_HINT = 'The server must answer on its own origin; report it to its operator. Retry the job once fixed.';

/**
 * The Bulk Data client (FHIR Bulk Data Access IG v2, `$export`): kick-off, status, manifest, cancel and file
 * streaming, over the one FhirClient (one HTTP client instance, the shared rate limiter, the token only to the
 * FHIR server's origin). No Temporal and no storage here: each method is one interaction, and the activities
 * (src/activities/bulkExport.ts) decide about retries, heartbeats and what is recorded.
 *
 * URLs from the server are followed only where they may lead: the status URL (Content-Location) only on the
 * FHIR server's origin; file URLs (and their redirects) on that origin or the provider's export storage origins.
 */
export class BulkDataClient {
  constructor(private readonly fhir: FhirClient) {}

  /** The kick-off URL of a level: `[base]/$export`, `[base]/Patient/$export`, `[base]/Group/{id}/$export`. */
  static kickOffPath(level: ExportLevel, groupId?: string): string {
    return level === 'System' ? '$export' : level === 'Patient' ? 'Patient/$export' : `Group/${encodeURIComponent(groupId ?? '')}/$export`;
  }

  /**
   * Kick-off with `Prefer: respond-async`: answers the status URL. One request (no in-call retry: each attempt of
   * the step is then seen). A refusal naming requested types says which; a status URL on another origin is refused.
   */
  async kickOff(connection: FhirConnection, req: KickOffRequest): Promise<{ statusUrl: string }> {
    const searchParams: Record<string, string> = { _outputFormat: 'application/fhir+ndjson' };
    if (req.types.length > 0) searchParams._type = req.types.join(',');
    if (req.since) searchParams._since = new Date(req.since).toISOString();
    const res = await this.fhir.exchange(connection, {
      method: 'GET',
      url: BulkDataClient.kickOffPath(req.level, req.groupId),
      kind: 'export-kickoff',
      headers: { accept: 'application/fhir+json', prefer: 'respond-async' },
      searchParams,
      signal: req.signal,
      retry: false,
    });
    if (res.status >= 400) throw refusedTypesError(res.status, res.body, req.types, res.url) ?? statusError('GET', res.url, res.status, res.body);
    const location = res.headers['content-location'];
    if (res.status !== 202 || typeof location !== 'string' || !location) {
      throw new FhirRequestError(
        'FHIR_REQUEST_FAILED',
        `Bulk export kick-off ${loggableUrl(res.url)} answered ${res.status}${location ? '' : ' without Content-Location'}: the server did not accept an asynchronous export.`,
        res.status,
        false,
      );
    }
    return { statusUrl: this.onServer(connection, location, res.url, 'export status URL (Content-Location)') };
  }

  /**
   * One status poll (`Cache-Control: no-cache`: a cached answer would hide progress or completion). Never waits.
   * No answer at all (a network error) is `transient`; a refused token or a foreign status URL is thrown.
   */
  async status(connection: FhirConnection, statusUrl: string, signal?: AbortSignal): Promise<ExportStatus> {
    const url = this.onServer(connection, statusUrl, statusUrl, 'export status URL');
    let res;
    try {
      res = await this.fhir.exchange(connection, {
        method: 'GET',
        url,
        kind: 'export-status',
        headers: { accept: 'application/fhir+json', 'cache-control': 'no-cache' },
        signal,
        retry: false,
      });
    } catch (err) {
      if (err instanceof AppError && !(err instanceof FhirRequestError)) throw err; // e.g. re-authorization required
      return { state: 'transient', message: `Status check failed: ${err instanceof Error ? err.message : String(err)}` };
    }
    return readExportStatus(res, url, Date.now(), this.fhir.retryAfterMaxMs);
  }

  /**
   * DELETE on the status URL: the server stops the export and drops its files. Answers the status (202; 404 =
   * already gone). 429 and 5xx are thrown as retryable (after the HTTP client's own retries).
   */
  async cancel(connection: FhirConnection, statusUrl: string): Promise<{ status: number }> {
    const url = this.onServer(connection, statusUrl, statusUrl, 'export status URL');
    const res = await this.fhir.exchange(connection, { method: 'DELETE', url, kind: 'export-cancel', headers: { accept: 'application/fhir+json' }, retry: true });
    if (res.status >= 500 || res.status === 429) throw statusError('DELETE', url, res.status, res.body);
    return { status: res.status };
  }

  /**
   * Opens one manifest file as NDJSON lines. The token is sent only when the manifest requires it, and then only to
   * the FHIR server's origin (never to a storage origin, nor across a redirect). The file and its redirects must be
   * on the FHIR server's origin or one of `storageOrigins`; anything else fails naming the host. A stream cut off
   * mid-file fails with a retryable FhirRequestError (the caller resumes from its last committed line).
   */
  async openFile(
    connection: FhirConnection,
    file: { url: string; requiresAccessToken: boolean },
    opts: { storageOrigins?: readonly string[]; signal?: AbortSignal; maxLineBytes?: number } = {},
  ): Promise<ExportFileStream> {
    const { stream } = await this.fhir.openStream(connection, file.url, { auth: file.requiresAccessToken, allowedOrigins: opts.storageOrigins ?? [], signal: opts.signal });
    return { lines: translated(stream, file.url, opts), close: () => stream.destroy() };
  }

  private onServer(connection: FhirConnection, url: string, relativeTo: string, what: string): string {
    const origin = new URL(normalizeBaseUrl(connection.baseUrl)).origin;
    return urlOnOrigins(url, relativeTo, [origin], what, STATUS_HINT);
  }
}

/** The file's lines; a read error (other than our own cancellation) becomes a FhirRequestError naming the file. */
async function* translated(stream: GotRequest, url: string, opts: { signal?: AbortSignal; maxLineBytes?: number }): AsyncGenerator<NdjsonLine> {
  try {
    yield* splitLines(stream, opts.maxLineBytes);
  } catch (err) {
    if (opts.signal?.aborted) throw err;
    throw toFhirError(err, url);
  } finally {
    stream.destroy();
  }
}
