/** A stored resource's version: meta.lastUpdated, then meta.versionId as a number. */
export interface StoredVersion {
  lastUpdated: Date;
  versionNum: number;
}

/** Newer = later lastUpdated, or the same instant and a higher versionNum. */
export function isNewer(a: StoredVersion, b: StoredVersion): boolean {
  const dt = a.lastUpdated.getTime() - b.lastUpdated.getTime();
  return dt > 0 || (dt === 0 && a.versionNum > b.versionNum);
}
