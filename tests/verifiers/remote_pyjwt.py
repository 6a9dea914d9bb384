"""Independent check of the public JWKS listener: PyJWT's PyJWKClient fetches the key set
over HTTPS (trusting SSL_CERT_FILE) and verifies a token with the key its kid names.

stdin:  {"url": "<JWKS URL>", "token": "<JWS compact>"}   (never argv)
stdout: {"kid", "claims"}
exit 0 verified, 1 rejected, 2 broken input or missing module.
"""
import json
import sys

try:
    import jwt
    from jwt import PyJWKClient
except ImportError as e:  # a missing verifier is a broken setup, never a pass
    print("python3-jwt is not installed: %s" % e, file=sys.stderr)
    sys.exit(2)

ALGS = ["EdDSA", "ES256", "ES384", "PS256"]


def main():
    try:
        data = json.load(sys.stdin)
        url, token = data["url"], data["token"]
    except Exception as e:  # noqa: BLE001
        print("bad input: %s" % e, file=sys.stderr)
        return 2
    try:
        client = PyJWKClient(url, cache_jwk_set=False)
        key = client.get_signing_key_from_jwt(token)
        claims = jwt.decode(token, key.key, algorithms=ALGS,
                            options={"verify_aud": False})
    except Exception as e:  # noqa: BLE001
        print("rejected: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        return 1
    print(json.dumps({"kid": key.key_id, "claims": claims}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
