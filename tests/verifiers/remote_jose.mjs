// Independent check of the public JWKS listener: npm jose's createRemoteJWKSet fetches the key
// set over HTTPS (trusting NODE_EXTRA_CA_CERTS) and verifies a token with it.
//
// stdin:  {"url": "<JWKS URL>", "token": "<JWS compact>"}   (never argv)
// stdout: {"kid", "claims"}
// exit 0 verified, 1 rejected, 2 broken input.
import { createRemoteJWKSet, jwtVerify } from "jose";

let input = "";
for await (const chunk of process.stdin) input += chunk;
let url, token;
try {
  ({ url, token } = JSON.parse(input));
} catch (e) {
  console.error(`bad input: ${e.message}`);
  process.exit(2);
}
try {
  const jwks = createRemoteJWKSet(new URL(url));
  const { payload, protectedHeader } = await jwtVerify(token, jwks, {
    algorithms: ["EdDSA", "ES256", "ES384", "PS256"],
  });
  console.log(JSON.stringify({ kid: protectedHeader.kid, claims: payload }));
  process.exit(0);
} catch (e) {
  console.error(`rejected: ${e.code ?? e.name}: ${e.message}`);
  process.exit(1);
}
