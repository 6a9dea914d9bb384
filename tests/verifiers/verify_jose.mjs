// Independent verifier: npm `jose` (pinned in package.json).
// stdin:  {"jwks": <JWK Set>, "token": "<JWS compact>"}   (never argv: tokens stay out of ps)
//         or {"url": "<JWKS URL>", "token": ...}: the set fetched with createRemoteJWKSet (the CA
//         from NODE_EXTRA_CA_CERTS); no thumbprints then
// stdout: {"alg", "kid", "claims", "thumbprints": {<kid>: <RFC 7638 SHA-256 thumbprint>}}
// exit 0 verified, 1 rejected, 2 broken input.
import * as jose from 'jose';

const chunks = [];
for await (const c of process.stdin) chunks.push(c);
let input;
try {
  input = JSON.parse(Buffer.concat(chunks).toString('utf8'));
} catch (e) {
  console.error('bad input: ' + e.message);
  process.exit(2);
}

const thumbprints = {};
for (const jwk of input.jwks ? input.jwks.keys : []) {
  thumbprints[jwk.kid] = await jose.calculateJwkThumbprint(jwk, 'sha256');
}
try {
  const keys = input.url ? jose.createRemoteJWKSet(new URL(input.url))
                         : jose.createLocalJWKSet(input.jwks);
  const { payload, protectedHeader } = await jose.jwtVerify(input.token, keys, {
    algorithms: ['EdDSA', 'ES256', 'ES384', 'PS256'],
    typ: 'license+jwt',
  });
  process.stdout.write(JSON.stringify({
    alg: protectedHeader.alg, kid: protectedHeader.kid, claims: payload, thumbprints,
  }));
} catch (e) {
  console.error('rejected: ' + (e.code || e.name) + ': ' + e.message);
  process.exit(1);
}
