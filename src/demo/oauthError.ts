/**
 * What an authorization server said when it refused a request, for a person to read: its `error` and
 * `error_description`, from a JSON answer (RFC 6749 §5.2) or from the sandbox's HTML error page, and a hint for
 * the one mistake a local setup makes (a redirect URI the server does not have registered).
 */
export function describeOAuthRefusal(status: number, contentType: string | undefined, body: string): string {
  let error: string | undefined;
  let description: string | undefined;
  if (/json/.test(contentType ?? '')) {
    try {
      const parsed = JSON.parse(body) as { error?: unknown; error_description?: unknown };
      if (typeof parsed.error === 'string') error = parsed.error;
      if (typeof parsed.error_description === 'string') description = parsed.error_description;
    } catch {
      /* not JSON after all: fall through to the text */
    }
  } else {
    const text = (s: string | undefined) => s?.replace(/<[^>]*>/g, '').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&').trim();
    error = text(/<p id="error">([\s\S]*?)<\/p>/.exec(body)?.[1]);
    description = text(/<p id="error">[\s\S]*?<\/p>\s*<p>([\s\S]*?)<\/p>/.exec(body)?.[1]);
  }
  const said = [error, description].filter(Boolean).join(': ') || body.slice(0, 200).trim() || '(no body)';
  const hint = /redirect_uri/i.test(description ?? '')
    ? ' Register the API\'s callback with the authorization server: ECLINICALWORKS_REDIRECT_URI must be one of the sandbox\'s SANDBOX_REDIRECT_URIS (npm start sets both from API_PORT).'
    : '';
  return `The authorization server refused the request (${status}): ${said}.${hint}`;
}
