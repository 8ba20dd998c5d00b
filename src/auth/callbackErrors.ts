import * as oidc from 'openid-client';
import { AppError } from '../errors';

/**
 * The callback's own parameters failing openid-client's checks (RFC 9207 `iss`, `state`): the redirect is wrong,
 * not the EHR's answer, so it is a 400 naming what did not match, not a 502 "invalid response encountered".
 * openid-client reports them as a ClientError with code OAUTH_INVALID_RESPONSE whose cause (oauth4webapi's
 * OperationProcessingError) carries the callback's parameters; token-endpoint answers that break the rules carry a
 * body instead and stay the EHR's failure. Returns undefined for any other error.
 */
export function callbackParameterError(err: unknown): AppError | undefined {
  if (!(err instanceof oidc.ClientError) || err.code !== 'OAUTH_INVALID_RESPONSE') return undefined;
  const cause = err.cause as { message?: string; cause?: { parameters?: unknown; expected?: unknown } } | undefined;
  const parameters = cause?.cause?.parameters;
  if (!(parameters instanceof URLSearchParams)) return undefined;
  const problem = cause?.message ?? err.message;
  if (/"iss"/.test(problem)) {
    const iss = parameters.get('iss');
    const expected = typeof cause?.cause?.expected === 'string' ? cause.cause.expected : undefined;
    const message = iss
      ? `The callback's iss "${iss}" is not the issuer of the authorization server this authorization was started with${expected ? ` ("${expected}")` : ''}: the redirect did not come from that server. Start the authorization again, and complete it at the EHR it sends you to.`
      : 'The callback has no iss parameter, which this authorization server requires (RFC 9207); start the authorization again.';
    return new AppError('OAUTH_ISSUER_MISMATCH', message, { status: 400, cause: err });
  }
  return new AppError('OAUTH_FAILED', `The callback's parameters are not valid: ${problem}. Start the authorization again.`, { status: 400, cause: err });
}
