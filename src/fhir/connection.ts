/**
 * What the FHIR client needs to know about a connection: whom it talks to and whether it sends a token. The FHIR
 * layer does not know how connections are stored; activities map their stored connection to this
 * (src/activities/fhirConnection.ts).
 */
export interface FhirConnection {
  /** The connection's id (for its access token and for logs). */
  id: string;
  /** The provider's id (for its rate limits and metrics). */
  provider: string;
  /** The FHIR base URL, canonical (src/fhir/urls.ts). */
  baseUrl: string;
  /** False for open connections: no token exists and none is ever sent. */
  usesToken: boolean;
}

/** Gives the connection's access token; with `rejected`, the token the server refused (get a fresh one). */
export interface AccessTokenSource {
  accessToken(connectionId: string, rejected?: string): Promise<{ token: string }>;
}

/** A FHIR resource as received: only the fields the client and the store rely on are typed. */
export interface FhirResource {
  resourceType: string;
  id?: string;
  meta?: { versionId?: string; lastUpdated?: string };
  [key: string]: unknown;
}
