import { redirectUrisFromEnv } from '../../src/sandbox/redirectUris';
import { describeOAuthRefusal } from '../../src/demo/oauthError';

describe('npm start on a non-default API_PORT', () => {
  it('registers the API\'s callback on API_PORT with the sandbox (not a fixed :3000)', () => {
    expect(redirectUrisFromEnv({ API_PORT: '3456' })).toEqual(['http://127.0.0.1:3456/api/ehr/callback']);
    expect(redirectUrisFromEnv({ API_PORT: '3456', ECLINICALWORKS_REDIRECT_URI: 'http://localhost:3456/api/ehr/callback' })).toEqual(['http://localhost:3456/api/ehr/callback']);
    expect(redirectUrisFromEnv({ API_PORT: '3456', SANDBOX_REDIRECT_URIS: 'http://a/cb, http://b/cb' })).toEqual(['http://a/cb', 'http://b/cb']);
    expect(redirectUrisFromEnv({})).toEqual(['http://127.0.0.1:3000/api/ehr/callback']);
  });

  it('shows the authorization server\'s error_description, from JSON or from its HTML error page, with a hint', () => {
    const fromJson = describeOAuthRefusal(400, 'application/json', JSON.stringify({ error: 'invalid_request', error_description: 'redirect_uri is missing or not registered for this client' }));
    expect(fromJson).toContain('(400): invalid_request: redirect_uri is missing or not registered for this client');
    expect(fromJson).toContain('SANDBOX_REDIRECT_URIS');
    const fromHtml = describeOAuthRefusal(400, 'text/html; charset=utf-8', '<!doctype html><html><body><h1>Authorization error</h1><p id="error">invalid_client</p><p>Unknown or missing client_id</p></body></html>');
    expect(fromHtml).toBe('The authorization server refused the request (400): invalid_client: Unknown or missing client_id.');
  });
});
