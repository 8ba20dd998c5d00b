/**
 * The client authentication of SMART Backend Services: private_key_jwt through openid-client, with the header
 * and claims SMART asks for. openid-client's defaults differ from SMART in two places, fixed here:
 * - the header has only alg and kid; SMART fixes `typ: "JWT"` and servers refuse assertions without it
 *   ("Invalid JWT token header. Missing 'typ' property");
 * - aud is the issuer; SMART wants the token endpoint URL.
 * exp (60 s ahead), iat, jti, iss = sub = client id are openid-client's and already what SMART wants.
 */
import type { CryptoKey } from 'jose';
import * as oidc from 'openid-client';

export const ASSERTION_TYP = 'JWT';

export function smartPrivateKeyJwt(key: CryptoKey, kid: string | undefined, tokenEndpoint: string): oidc.ClientAuth {
  return oidc.PrivateKeyJwt(
    { key, kid },
    {
      [oidc.modifyAssertion]: (header, payload) => {
        header.typ = ASSERTION_TYP;
        payload.aud = tokenEndpoint;
      },
    },
  );
}
