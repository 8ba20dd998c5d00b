import type { Request, Response } from 'express';

/**
 * The OAuth callback is opened by a person's browser (the EHR redirects it there), so a browser gets a short page
 * saying what happened, not raw JSON; any other client (Accept: application/json, or no preference) gets JSON.
 */
export function wantsHtml(req: Request): boolean {
  return req.accepts(['json', 'html']) === 'html';
}

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);

export function sendCallbackPage(res: Response, status: number, outcome: { connected: { connectionId: string; provider: string; patientId?: string } } | { failed: { code: string; message: string } }): void {
  const body =
    'connected' in outcome
      ? `<h1>Connected</h1><p>The ${escape(outcome.connected.provider)} connection <code id="connection">${escape(outcome.connected.connectionId)}</code>${outcome.connected.patientId ? ` for patient <code>${escape(outcome.connected.patientId)}</code>` : ''} is ready. You can close this window.</p>`
      : `<h1>The connection was not made</h1><p id="error">${escape(outcome.failed.message)}</p><p><small>${escape(outcome.failed.code)}</small></p>`;
  res
    .status(status)
    .type('html')
    // The page is static text: no script, no frames, nothing loaded from elsewhere.
    .set('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'")
    .send(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>ehr-sync</title></head><body>${body}</body></html>`);
}
