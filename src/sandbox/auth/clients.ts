/** Registered OAuth clients. */
import type { ClientRegistration } from '../types';
import { checkJwksUrl } from './jwks-url';

export class ClientRegistry {
  private readonly clients = new Map<string, ClientRegistration>();

  register(client: ClientRegistration): ClientRegistration {
    if (!client.clientId || typeof client.clientId !== 'string') throw new Error('clientId is required');
    if (client.jwks !== undefined && (!client.jwks || !Array.isArray(client.jwks.keys))) {
      throw new Error('jwks must be {keys: JWK[]}');
    }
    // RFC 7591 2: jwks and jwks_uri MUST NOT both be present (which one would an assertion be checked against?).
    if (client.jwks !== undefined && client.jwksUrl !== undefined) throw new Error('jwks and jwksUrl are mutually exclusive');
    if (client.jwksUrl !== undefined) checkJwksUrl(client.jwksUrl);
    const stored: ClientRegistration = {
      clientId: client.clientId,
      clientSecret: client.clientSecret,
      redirectUris: client.redirectUris ? [...client.redirectUris] : [],
      jwks: client.jwks ? { keys: client.jwks.keys.map((k) => ({ ...k })) } : undefined,
      jwksUrl: client.jwksUrl,
      scopes: client.scopes ? [...client.scopes] : undefined,
    };
    this.clients.set(client.clientId, stored);
    return stored;
  }

  get(clientId: string): ClientRegistration | undefined {
    return this.clients.get(clientId);
  }

  list(): ClientRegistration[] {
    return [...this.clients.values()];
  }

  /** Public clients have neither a secret nor keys. */
  static isPublic(client: ClientRegistration): boolean {
    return !client.clientSecret && !(client.jwks && client.jwks.keys.length > 0) && !client.jwksUrl;
  }
}
