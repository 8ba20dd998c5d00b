import * as oidc from 'openid-client';
import { OAuthError, oauthError } from '../../src/auth/smartAuth';

/** What openid-client throws when the token endpoint answers without an OAuth JSON body (a proxy's 429 or 503 page). */
function bareAnswer(status: number, headers: Record<string, string> = {}): Error {
  const response = new Response('<html>Too Many Requests</html>', { status, headers: { 'content-type': 'text/html', ...headers } });
  return new oidc.ClientError('unexpected response content-type', { cause: response });
}

describe('oauthError names what a token endpoint answered', () => {
  it('a bare 429 says the status and Retry-After, and stays retryable', () => {
    const err = oauthError('get a backend-services access token', bareAnswer(429, { 'retry-after': '1' }));
    expect(err).toBeInstanceOf(OAuthError);
    expect(err.message).toBe('Could not get a backend-services access token: the token endpoint answered 429 (Retry-After: 1) without an OAuth error body.');
    expect(err.retryable).toBe(true);
    expect(err.grantRejected).toBe(false);
  });

  it('a bare 503 without Retry-After says the status', () => {
    expect(oauthError('refresh the access token', bareAnswer(503)).message).toBe('Could not refresh the access token: the token endpoint answered 503 without an OAuth error body.');
  });

  it('any other failure keeps its own message', () => {
    expect(oauthError('refresh the access token', new Error('connect ECONNREFUSED 127.0.0.1:1')).message).toBe('Could not refresh the access token: connect ECONNREFUSED 127.0.0.1:1.');
  });
});
