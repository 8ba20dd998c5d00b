import type { Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { EHR_SEARCH_ATTRIBUTES } from './searchAttributes';

/** gRPC status codes (the SDK does not re-export grpc-js's enum). */
const GRPC_ALREADY_EXISTS = 6;
const GRPC_UNIMPLEMENTED = 12;
const KEYWORD = temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD;

const grpcCode = (err: unknown): number | undefined => (err as { code?: number }).code;

/**
 * Registers the custom search attributes in the namespace at start-up (API, worker and test stacks call it; a
 * second call is a no-op). Without them, starting a workflow with search attributes fails, so a missing one is an
 * error that names the fix.
 *
 * Measured behaviour this handles: the CLI dev server (Server 1.32) lists and adds, and adding an existing
 * attribute succeeds; the Java time-skipping test server (1.40) does NOT implement ListSearchAttributes but does
 * implement AddSearchAttributes, answering ALREADY_EXISTS for a known name (and failing the whole call at the
 * first known one). So without a list, each attribute is added on its own and ALREADY_EXISTS counts as done.
 */
export async function registerSearchAttributes(connection: Connection, namespace: string): Promise<void> {
  let existing: Record<string, temporal.api.enums.v1.IndexedValueType> | undefined;
  try {
    existing = (await connection.operatorService.listSearchAttributes({ namespace })).customAttributes ?? {};
  } catch (err) {
    if (grpcCode(err) !== GRPC_UNIMPLEMENTED) throw registrationError(EHR_SEARCH_ATTRIBUTES.map((k) => k.name), namespace, err);
  }
  if (existing) {
    const wrongType = EHR_SEARCH_ATTRIBUTES.filter((k) => k.name in existing && existing[k.name] !== KEYWORD);
    if (wrongType.length > 0) {
      throw new Error(
        `The Temporal search attributes ${wrongType.map((k) => k.name).join(', ')} exist in namespace "${namespace}" with a type other than Keyword. ` +
          'Remove them (temporal operator search-attribute remove --name <Name>) and restart, so they are created as Keyword.',
      );
    }
  }
  const missing = EHR_SEARCH_ATTRIBUTES.filter((k) => !existing || !(k.name in existing));
  if (missing.length === 0) return;
  // One add per attribute: on a server that answers ALREADY_EXISTS, one known name must not block the others.
  for (const key of missing) {
    try {
      await connection.operatorService.addSearchAttributes({ namespace, searchAttributes: { [key.name]: KEYWORD } });
    } catch (err) {
      // Another process registered it between our list and add (or the server cannot list).
      if (grpcCode(err) === GRPC_ALREADY_EXISTS) continue;
      throw registrationError([key.name], namespace, err);
    }
  }
}

function registrationError(names: string[], namespace: string, err: unknown): Error {
  return new Error(
    `Could not register the Temporal search attributes ${names.join(', ')} in namespace "${namespace}": ${(err as Error).message}. ` +
      'Register them once with: temporal operator search-attribute create --namespace <namespace> --name <Name> --type Keyword',
    { cause: err },
  );
}
