"""Independent verifier: Debian's python3-jwcrypto.

stdin:  {"jwks": <JWK Set>, "token": "<JWS compact>"}   (never argv: tokens stay out of ps)
stdout: {"alg", "kid", "claims", "thumbprints": {<kid>: <RFC 7638 SHA-256 thumbprint>}}
exit 0 verified, 1 rejected, 2 broken input or missing module.
"""
import json
import sys

try:
    from jwcrypto import jwk, jws
except ImportError as e:  # a missing verifier is a broken setup, never a pass
    print("python3-jwcrypto is not installed: %s" % e, file=sys.stderr)
    sys.exit(2)

ALGS = ["EdDSA", "ES256", "ES384", "PS256"]


def main():
    try:
        data = json.load(sys.stdin)
        keyset = jwk.JWKSet.from_json(json.dumps(data["jwks"]))
    except Exception as e:  # noqa: BLE001
        print("bad input: %s" % e, file=sys.stderr)
        return 2
    thumbprints = {k["kid"]: jwk.JWK(**k).thumbprint() for k in data["jwks"]["keys"]}
    try:
        token = jws.JWS()
        token.deserialize(data["token"])
        header = token.jose_header
        if header.get("typ") != "license+jwt":
            raise ValueError("typ is not license+jwt")
        if header.get("alg") not in ALGS:
            raise ValueError("algorithm not allowed")
        key = keyset.get_key(header["kid"])
        if key is None:
            raise ValueError("unknown kid")
        token.allowed_algs = ALGS
        token.verify(key, alg=header["alg"])
        claims = json.loads(token.payload)
    except Exception as e:  # noqa: BLE001
        print("rejected: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        return 1
    json.dump({"alg": header["alg"], "kid": header["kid"], "claims": claims,
               "thumbprints": thumbprints}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
