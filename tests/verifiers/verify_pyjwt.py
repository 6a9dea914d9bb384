"""Independent verifier: Debian's python3-jwt (PyJWT).

stdin:  {"jwks": <JWK Set>, "token": "<JWS compact>"}   (never argv: tokens stay out of ps)
        or {"url": "<JWKS URL>", "token": ...}: the set fetched with PyJWKClient
stdout: {"alg", "kid", "claims"}
exit 0 verified, 1 rejected, 2 broken input or missing module.
"""
import json
import sys

try:
    import jwt
except ImportError as e:  # a missing verifier is a broken setup, never a pass
    print("python3-jwt is not installed: %s" % e, file=sys.stderr)
    sys.exit(2)

ALGS = ["EdDSA", "ES256", "ES384", "PS256"]


def main():
    try:
        data = json.load(sys.stdin)
        if "url" in data:
            return verify_remote(data["url"], data["token"])
        keyset = jwt.PyJWKSet.from_dict(data["jwks"])
    except Exception as e:  # noqa: BLE001
        print("bad input: %s" % e, file=sys.stderr)
        return 2
    try:
        header = jwt.get_unverified_header(data["token"])
        if header.get("typ") != "license+jwt":
            raise ValueError("typ is not license+jwt")
        matches = [k for k in keyset.keys if k.key_id == header.get("kid")]
        if len(matches) != 1:
            raise ValueError("kid does not name exactly one key")
        # The algorithm comes from the published JWK (pinned to the key), never from the token
        # header; PyJWK itself refuses an "alg" that does not fit the key type.
        alg = [k for k in data["jwks"]["keys"] if k.get("kid") == header.get("kid")][0].get("alg")
        if alg not in ALGS:
            raise ValueError("key algorithm not allowed")
        claims = jwt.decode(data["token"], matches[0].key, algorithms=[alg])
    except Exception as e:  # noqa: BLE001
        print("rejected: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        return 1
    json.dump({"alg": header["alg"], "kid": header["kid"], "claims": claims}, sys.stdout)
    return 0


def verify_remote(url, token):
    """The key set fetched over HTTPS by PyJWKClient, as a product would (the CA bundle from
    SSL_CERT_FILE), and the key its kid names."""
    try:
        header = jwt.get_unverified_header(token)
        if header.get("typ") != "license+jwt":
            raise ValueError("typ is not license+jwt")
        key = jwt.PyJWKClient(url, cache_jwk_set=False).get_signing_key_from_jwt(token)
        claims = jwt.decode(token, key.key, algorithms=ALGS)
    except Exception as e:  # noqa: BLE001
        print("rejected: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        return 1
    json.dump({"alg": header["alg"], "kid": header["kid"], "claims": claims}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
