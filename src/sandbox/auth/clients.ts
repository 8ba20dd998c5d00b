/** Registered OAuth clients. */
import type { ClientRegistration } from '../types';

export class ClientRegistry {
  private readonly clients = new Map<string, ClientRegistration>();

  register(client: ClientRegistration): ClientRegistration {
    if (!client.clientId || typeof client.clientId !== 'string') throw new Error('clientId is required');
    if (client.jwks !== undefined && (!client.jwks || !Array.isArray(client.jwks.keys))) {
      throw new Error('jwks must be {keys: JWK[]}');
    }
    const stored: ClientRegistration = {
      clientId: client.clientId,
      clientSecret: client.clientSecret,
      redirectUris: client.redirectUris ? [...client.redirectUris] : [],
      jwks: client.jwks ? { keys: client.jwks.keys.map((k) => ({ ...k })) } : undefined,
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
    return !client.clientSecret && !(client.jwks && client.jwks.keys.length > 0);
  }
}
