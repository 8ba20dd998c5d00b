/**
 * Names of the leases that belong to a connection. One place, because deleting a connection purges them
 * (CONNECTION_SCOPES in src/store/mongo.ts) and the code that takes them must use the same names.
 */
export function refreshLeaseName(connectionId: string): string {
  return `refresh:${connectionId}`;
}
