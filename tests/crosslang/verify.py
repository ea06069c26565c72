#!/usr/bin/env python3
"""An independent verifier of aidledger material, written from SPEC.md alone
(not from the Rust code), with Python's standard library and the
`cryptography` package: a checkpoint note signed by the ledger key (C2SP
signed-note, key id, Ed25519), an inclusion proof of one entry into it
(RFC 9162 2.1.3.2), and the entry's own event signature (SPEC §3), parsed
from the protobuf bytes by hand.

Usage: verify.py MATERIAL.json
  {"vkey": ..., "note": ..., "seq": n, "tree_size": n,
   "entry": base64 LedgerEntry bytes, "proof": [base64 hash, ...]}
Exit 0 and print "ok" if everything verifies; otherwise exit 1 and say why.
"""

import base64
import hashlib
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


class Invalid(Exception):
    pass


def sha256(data):
    return hashlib.sha256(data).digest()


def parse_vkey(vkey):
    # SPEC §2: <origin>+<hex key id>+<base64(0x01 || pubkey)>
    name, key_id, key = vkey.split("+", 2)
    key = base64.b64decode(key, validate=True)
    if len(key) != 33 or key[0] != 0x01:
        raise Invalid("the vkey is not an Ed25519 (0x01) key")
    # SPEC §5: key id = first 4 bytes of SHA-256(origin || 0x0A || 0x01 || pubkey)
    if sha256(name.encode() + b"\n" + key)[:4] != bytes.fromhex(key_id):
        raise Invalid("the vkey's key id does not match its name and key")
    return name, bytes.fromhex(key_id), key[1:]


def verify_note(note, name, key_id, public_key):
    # C2SP signed-note: text, a blank line, then "— <name> base64(id || sig)" lines.
    text, _, signatures = note.rpartition("\n\n")
    text += "\n"
    verified = False
    for line in signatures.rstrip("\n").split("\n"):
        if not line.startswith("\u2014 "):
            raise Invalid("malformed signature line %r" % line)
        signer, blob = line[2:].split(" ", 1)
        blob = base64.b64decode(blob, validate=True)
        # SPEC §5: lines of keys we do not know (witnesses) are ignored.
        if signer != name or blob[:4] != key_id:
            continue
        try:
            Ed25519PublicKey.from_public_bytes(public_key).verify(blob[4:], text.encode())
        except InvalidSignature:
            raise Invalid("the checkpoint signature does not verify")
        verified = True
    if not verified:
        raise Invalid("the note carries no signature by the ledger key")
    lines = text.split("\n")
    # SPEC §5: <origin>\n<tree size>\n<base64 root>\n, no extension lines.
    if len(lines) != 4 or lines[3] != "":
        raise Invalid("the checkpoint is not three lines")
    if lines[0] != name:
        raise Invalid("the checkpoint names another origin")
    root = base64.b64decode(lines[2], validate=True)
    if len(root) != 32:
        raise Invalid("the root is not 32 bytes")
    return int(lines[1]), root


def verify_inclusion(leaf, index, size, proof, root):
    # RFC 9162 2.1.3.2
    if index >= size:
        raise Invalid("the index is outside the tree")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise Invalid("the inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = sha256(b"\x01" + p + r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = sha256(b"\x01" + r + p)
        fn >>= 1
        sn >>= 1
    if sn != 0 or r != root:
        raise Invalid("the inclusion proof does not lead to the checkpoint root")


def protobuf_fields(data):
    """(field number, value) of a protobuf message: varints as int,
    length-delimited fields as bytes (the only wire types SPEC §4 uses)."""
    i, fields = 0, []

    def varint():
        nonlocal i
        shift = value = 0
        while True:
            if i >= len(data):
                raise Invalid("a varint runs past the end")
            byte = data[i]
            i += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    while i < len(data):
        key = varint()
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            fields.append((number, varint()))
        elif wire_type == 2:
            length = varint()
            fields.append((number, data[i:i + length]))
            i += length
        else:
            raise Invalid("unexpected wire type %d" % wire_type)
    return fields


def verify_entry(entry, seq, origin):
    # SPEC §4: LedgerEntry { seq = 1; prev_hash = 2; recorded_at = 3; signed_event = 4 }
    fields = dict(protobuf_fields(entry))
    if fields.get(1, 0) != seq:
        raise Invalid("the entry has another seq")
    # SPEC §3: SignedEvent { event = 1; public_key = 2; signature = 3 }
    signed = dict(protobuf_fields(fields[4]))
    message = b"aidledger/v1/event\n" + origin.encode() + b"\n" + signed[1]
    try:
        Ed25519PublicKey.from_public_bytes(signed[2]).verify(signed[3], message)
    except InvalidSignature:
        raise Invalid("the event signature does not verify")


def main(path):
    with open(path) as f:
        material = json.load(f)
    name, key_id, public_key = parse_vkey(material["vkey"])
    size, root = verify_note(material["note"], name, key_id, public_key)
    if size != material["tree_size"]:
        raise Invalid("the checkpoint is of another tree size")
    entry = base64.b64decode(material["entry"], validate=True)
    proof = [base64.b64decode(h, validate=True) for h in material["proof"]]
    # SPEC §4: leaf hash = SHA-256(0x00 || entry bytes)
    verify_inclusion(sha256(b"\x00" + entry), material["seq"], size, proof, root)
    verify_entry(entry, material["seq"], name)
    print("ok: entry %d is in the checkpoint of size %d of %s" % (material["seq"], size, name))


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    except Invalid as error:
        print("invalid: %s" % error, file=sys.stderr)
        sys.exit(1)
