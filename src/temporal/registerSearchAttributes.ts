import type { Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { EHR_SEARCH_ATTRIBUTES } from './searchAttributes';

/** gRPC status code ALREADY_EXISTS (the SDK does not re-export grpc-js's enum). */
const GRPC_ALREADY_EXISTS = 6;
const GRPC_UNIMPLEMENTED = 12;
const KEYWORD = temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD;

/**
 * Registers the custom search attributes in the namespace at start-up (API and worker both call it; a second call
 * is a no-op). Without them, starting a workflow with search attributes fails, so a missing one is an error that
 * names the fix.
 */
export async function registerSearchAttributes(connection: Connection, namespace: string): Promise<void> {
  let existing;
  try {
    existing = await connection.operatorService.listSearchAttributes({ namespace });
  } catch (err) {
    // The time-skipping test server has no operator service (and accepts any search attribute): nothing to do.
    if ((err as { code?: number }).code === GRPC_UNIMPLEMENTED) return;
    throw err;
  }
  const missing = EHR_SEARCH_ATTRIBUTES.filter((k) => !(k.name in (existing.customAttributes ?? {})));
  if (missing.length === 0) return;
  try {
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map((k) => [k.name, KEYWORD])),
    });
  } catch (err) {
    // Another process registered them between our list and add.
    if ((err as { code?: number }).code === GRPC_ALREADY_EXISTS) return;
    throw new Error(
      `Could not register the Temporal search attributes ${missing.map((k) => k.name).join(', ')} in namespace "${namespace}": ${(err as Error).message}. ` +
        'Register them once with: temporal operator search-attribute create --name <Name> --type Keyword',
      { cause: err },
    );
  }
}
