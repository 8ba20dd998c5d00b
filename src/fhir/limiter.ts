/**
 * What the FHIR client needs from a rate limiter: wait for a slot before each request (retries included) and
 * learn from the server's answers (X-RateLimit-* headers, 429s). The shared implementation lives in
 * src/limits; tests and tools that need no limit use `unlimited`.
 */
export interface QuotaContext {
  providerId: string;
  baseUrl: string;
}

export interface RequestLimiter {
  acquire(ctx: QuotaContext, signal?: AbortSignal): Promise<void>;
  observe(ctx: QuotaContext, response: { statusCode: number; headers: Record<string, string | string[] | undefined> }): Promise<void>;
}

export const unlimited: RequestLimiter = {
  acquire: async () => {},
  observe: async () => {},
};
