import type { Response } from 'express';

/** The spec's envelope: `{ success: true, data }` or `{ success: false, error: { code, message } }`. */
export function ok(res: Response, data: unknown, status = 200): void {
  res.status(status).json({ success: true, data });
}

export function fail(res: Response, status: number, code: string, message: string, details?: unknown): void {
  res.status(status).json({ success: false, error: details === undefined ? { code, message } : { code, message, details } });
}
