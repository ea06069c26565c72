#!/usr/bin/env python3
"""The keyed values of SPEC section 7.5, computed from SPEC.md alone (not
from the Rust code) with Python's standard library:

- name_commitment = SHA-256("aidledger/v1/name" || 0x0A || salt || 0x0A || NFC(name))
- external_ref_hash = HMAC-SHA256(K_ref, "aidledger/v1/ref" || 0x0A || normalize(reference)),
  normalize: Unicode NFC, whitespace removed everywhere, ASCII letters upper-cased
- beneficiary token = HMAC-SHA256(K_ben, "aidledger/v1/beneficiary" || 0x0A || record id)

Usage: privacy.py CASES.json
  [{"name_commitment": {"salt": hex, "name": text}},
   {"external_ref_hash": {"key": hex, "reference": text}},
   {"beneficiary_token": {"key": hex, "record_id": text}}, ...]
Prints a JSON list of the values, in lowercase hex, in the same order.
"""

import hashlib
import hmac
import json
import sys
import unicodedata


def name_commitment(salt, name):
    nfc = unicodedata.normalize("NFC", name).encode("utf-8")
    return hashlib.sha256(b"aidledger/v1/name\n" + salt + b"\n" + nfc).digest()


def normalize(reference):
    nfc = unicodedata.normalize("NFC", reference)
    kept = (c for c in nfc if not c.isspace())
    return "".join(c.upper() if "a" <= c <= "z" else c for c in kept)


def external_ref_hash(key, reference):
    message = b"aidledger/v1/ref\n" + normalize(reference).encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).digest()


def beneficiary_token(key, record_id):
    message = b"aidledger/v1/beneficiary\n" + record_id.encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).digest()


def main():
    with open(sys.argv[1], encoding="utf-8") as file:
        cases = json.load(file)
    out = []
    for case in cases:
        (kind, args), = case.items()
        if kind == "name_commitment":
            value = name_commitment(bytes.fromhex(args["salt"]), args["name"])
        elif kind == "external_ref_hash":
            value = external_ref_hash(bytes.fromhex(args["key"]), args["reference"])
        elif kind == "beneficiary_token":
            value = beneficiary_token(bytes.fromhex(args["key"]), args["record_id"])
        else:
            raise SystemExit("unknown case " + kind)
        out.append(value.hex())
    print(json.dumps(out))


if __name__ == "__main__":
    main()
