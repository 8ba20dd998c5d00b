/** A resource a `deleted` file says is gone. */
export interface DeletedKey {
  resourceType: string;
  id: string;
}

/**
 * The (type, id) pairs of one line of a `deleted` file: a Bundle whose entries are DELETE requests with
 * `request.url` = `Type/id` (optionally absolute, optionally with `/_history/v`). Other entries are ignored.
 */
export function deletedResourceKeys(bundle: unknown): DeletedKey[] {
  const entries = (bundle as { entry?: Array<{ request?: { method?: string; url?: string } }> } | undefined)?.entry;
  const out: DeletedKey[] = [];
  for (const e of Array.isArray(entries) ? entries : []) {
    if (e?.request?.method?.toUpperCase() !== 'DELETE' || typeof e.request.url !== 'string') continue;
    const m = /(?:^|\/)([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/.exec(e.request.url.split('?')[0] ?? '');
    if (m) out.push({ resourceType: m[1] as string, id: m[2] as string });
  }
  return out;
}
