/**
 * OAuth client ids as this service accepts them. RFC 6749 sets no length, and real registrations produce long
 * ones: a SMART server that embeds the client's JWKS in the id issued 787-character ids. So ids up to 8 KB are
 * accepted (4 KB ids are tested end to end); the bound only keeps absurd input out of the database and the token
 * requests (the id travels in the form body and twice in the signed assertion, as iss and sub).
 */
import { z } from 'zod';

export const MAX_CLIENT_ID_LENGTH = 8192;

export const ClientIdSchema = z
  .string()
  .min(1, 'must not be empty')
  .max(MAX_CLIENT_ID_LENGTH, `must be at most ${MAX_CLIENT_ID_LENGTH} characters (8 KB)`);
