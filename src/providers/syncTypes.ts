/**
 * Which resource types an enhanced sync (or a sync schedule's run) fetches: one rule, stated once here and quoted by
 * the README and the OpenAPI document.
 *
 * It follows the spec's enhanced-sync example: `includeStandard` and `includeEnhanced` true with `resourceTypes`
 * listing the five enhanced types answers non-zero `standardResources`, so listing enhanced types does not drop
 * the standard ones; and listing only `Condition` syncs Condition, not all seven standard types.
 */
export const RESOURCE_TYPES_RULE =
  'Every type listed in resourceTypes is synced, and so is every type of a category (the provider\'s standard or enhanced types) whose include flag is true and of which resourceTypes lists none.';

export interface TypeRequest {
  includeStandard: boolean;
  includeEnhanced: boolean;
  resourceTypes?: readonly string[];
}

/**
 * The standard and enhanced types to sync. A listed type is counted in its own category; a listed type in neither of
 * the provider's lists (any R4 type the server may have) counts as enhanced.
 */
export function selectSyncTypes(lists: { standard: readonly string[]; enhanced: readonly string[] }, req: TypeRequest): { standard: string[]; enhanced: string[] } {
  const listed = [...new Set(req.resourceTypes ?? [])];
  const standardListed = listed.filter((t) => lists.standard.includes(t));
  const others = listed.filter((t) => !lists.standard.includes(t));
  const enhancedListed = others.filter((t) => lists.enhanced.includes(t));
  const standard = standardListed.length > 0 ? standardListed : req.includeStandard ? [...lists.standard] : [];
  const enhanced = [...(enhancedListed.length > 0 ? enhancedListed : req.includeEnhanced ? [...lists.enhanced] : []), ...others.filter((t) => !lists.enhanced.includes(t))];
  return { standard, enhanced };
}

/** Whether a request selects any type at all (an include flag, or a listed type). */
export function selectsAnyType(req: TypeRequest): boolean {
  return req.includeStandard || req.includeEnhanced || (req.resourceTypes?.length ?? 0) > 0;
}
