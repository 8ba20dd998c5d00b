/**
 * The redirect URIs the sandbox registers for its client. SANDBOX_REDIRECT_URIS (comma-separated) wins; otherwise
 * the service's own ECLINICALWORKS_REDIRECT_URI, then the API's callback on API_PORT. Registering a fixed :3000
 * made every authorization of an API on another port fail with "redirect_uri … not registered".
 */
export function redirectUrisFromEnv(env: NodeJS.ProcessEnv): string[] {
  const raw = env.SANDBOX_REDIRECT_URIS || env.ECLINICALWORKS_REDIRECT_URI || `http://127.0.0.1:${env.API_PORT || '3000'}/api/ehr/callback`;
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}
