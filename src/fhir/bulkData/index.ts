/** The Bulk Data client: kick-off, status, manifest, cancel and file streaming ($export, Bulk Data IG v2). */
export { BulkDataClient, type ExportFileStream, type ExportLevel, type KickOffRequest } from './client';
export { parseManifest, type ExportManifest, type ManifestFile } from './manifest';
export { readExportStatus, type ExportStatus, type RetryAfterFields, type StatusAnswer } from './status';
export { deletedResourceKeys, type DeletedKey } from './deleted';
