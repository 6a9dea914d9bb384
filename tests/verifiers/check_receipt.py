#!/usr/bin/env python3
"""Independent check of a Licentra inclusion receipt (C2SP tlog-proof), standard library only.

usage: check_receipt.py RECEIPT_FILE TOKEN_FILE

Parses the tlog-proof text, recomputes the Merkle root from the logged entry (the extra data)
with the RFC 9162 section 2.1.3.2 algorithm (SHA-256, leaf = H(0x00 || entry), node =
H(0x01 || left || right)), compares it with the checkpoint's root hash, and checks that the
entry records the SHA-256 of the token. It does not check the checkpoint's signature (Go's
sumdb/note does that in the tests). Exit 0 and print the index and tree size when everything
holds; exit 1 with the reason otherwise; exit 2 on bad usage.
"""
import base64
import binascii
import hashlib
import json
import sys


def fail(reason):
    print("refused: " + reason)
    sys.exit(1)


def b64(text):
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        fail("not base64: " + text)


def root_from_proof(index, size, leaf, proof):
    # RFC 9162 section 2.1.3.2, steps 1-6, as written there.
    if index >= size:
        fail("index is not below the tree size")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            fail("proof is longer than the tree is deep")
        if fn % 2 == 1 or fn == sn:
            r = hashlib.sha256(b"\x01" + p + r).digest()
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = hashlib.sha256(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        fail("proof is shorter than the tree is deep")
    return r


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    with open(sys.argv[1], "rb") as f:
        text = f.read().decode("utf-8")
    with open(sys.argv[2], "rb") as f:
        token = f.read().rstrip(b"\r\n")

    proof_part, sep, checkpoint = text.partition("\n\n")
    if not sep:
        fail("no empty line before the checkpoint")
    lines = proof_part.split("\n")
    if lines[0] != "c2sp.org/tlog-proof@v1":
        fail("not a tlog-proof")
    lines = lines[1:]
    if not lines or not lines[0].startswith("extra "):
        fail("no extra line with the logged entry")
    entry_line = b64(lines[0][len("extra "):])
    lines = lines[1:]
    if not lines or not lines[0].startswith("index "):
        fail("no index line")
    index = int(lines[0][len("index "):])
    proof = [b64(h) for h in lines[1:]]
    if any(len(h) != 32 for h in proof):
        fail("a proof line is not a SHA-256 hash")

    body = checkpoint.split("\n")
    if len(body) < 3:
        fail("checkpoint too short")
    size = int(body[1])
    root = b64(body[2])

    leaf = hashlib.sha256(b"\x00" + entry_line).digest()
    if root_from_proof(index, size, leaf, proof) != root:
        fail("the proof does not lead to the checkpoint's root")
    entry = json.loads(entry_line)
    if entry.get("seq") != index:
        fail("the entry's seq is not the receipt's index")
    if entry.get("action") != "token.sign" or entry.get("result") != "allowed":
        fail("the entry does not record an issued token")
    if entry.get("token_sha256") != hashlib.sha256(token).hexdigest():
        fail("the entry records another token")
    print("included: index %d in tree of size %d" % (index, size))


if __name__ == "__main__":
    main()
