import { z } from 'zod';

/**
 * The one Idempotency-Key format, for every route that starts a job: 8-64 characters of letters, digits, dot, dash
 * or underscore (enough for a UUID or a ULID; nothing that needs escaping in an id or a log line).
 */
export const IDEMPOTENCY_KEY_PATTERN = /^[A-Za-z0-9_.-]{8,64}$/;

/** The message names no header: the caller's parser (parseHeader on main) names it. */
export const IdempotencyKeySchema = z.string().regex(IDEMPOTENCY_KEY_PATTERN, 'must be 8-64 letters, digits, dot, dash or underscore');
