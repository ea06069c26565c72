// Verification in the donor's own browser, trusting nothing the server says
// except what the ledger's published key has signed (SPEC §4, §5):
//
// 1. the verifier key is well formed and its key id matches;
// 2. the checkpoint note carries a valid Ed25519 signature by that key;
// 3. the entry's leaf hash is SHA-256(0x00 || entry);
// 4. the inclusion proof leads from that leaf to the checkpoint's root;
// 5. the entry is this receipt, at this position.
//
// A bank reference is not handled here: the look-up form posts it to the
// feed, which holds the reference key (SPEC 7.5, 9.3).
"use strict";

(function () {
  const TEXT = {
    vi: {
      fetch: "Tải bằng chứng từ máy chủ",
      vkey: "Khoá xác minh đúng định dạng, mã khoá khớp",
      sig: "Chữ ký Ed25519 của sổ cái trên điểm kiểm tra hợp lệ",
      size: "Điểm kiểm tra bao gồm sự kiện này",
      leaf: "Băm lá SHA-256(0x00 ‖ bản ghi) khớp",
      inclusion: "Bằng chứng Merkle dẫn tới gốc đã ký",
      entry: "Bản ghi đúng là biên nhận này, ở đúng vị trí",
      valid: "HỢP LỆ: biên nhận nằm trong sổ cái đã được ký bằng khoá công bố.",
      invalid: "KHÔNG HỢP LỆ: bằng chứng không khớp. Đừng tin vào trang này; hãy báo cho cơ quan kiểm toán.",
      unsupported: "Trình duyệt này chưa hỗ trợ Ed25519 trong WebCrypto; hãy dùng trình duyệt mới hơn hoặc công cụ aidctl.",
      checking: "Đang kiểm chứng…",
      root: "Gốc",
    },
    en: {
      fetch: "Fetch the proof from the server",
      vkey: "The verifier key is well formed and its key id matches",
      sig: "The ledger's Ed25519 signature on the checkpoint is valid",
      size: "The checkpoint covers this event",
      leaf: "The leaf hash SHA-256(0x00 ‖ entry) matches",
      inclusion: "The Merkle proof leads to the signed root",
      entry: "The entry is this receipt, at this position",
      valid: "VALID: this receipt is in the ledger signed by the published key.",
      invalid: "INVALID: the proof does not check out. Do not trust this page; tell the auditors.",
      unsupported: "This browser has no Ed25519 in WebCrypto; use a newer browser or the aidctl tool.",
      checking: "Verifying…",
      root: "Root",
    },
  };

  const enc = new TextEncoder();

  function b64(text) {
    const raw = atob(text.trim());
    const out = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }

  function hex(bytes) {
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function unhex(text) {
    if (!/^([0-9a-f]{2})*$/.test(text)) throw new Error("not hex: " + text);
    const out = new Uint8Array(text.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(text.substr(i * 2, 2), 16);
    return out;
  }

  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  function equal(a, b) {
    return a.length === b.length && a.every((x, i) => x === b[i]);
  }

  async function sha256(bytes) {
    return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  }

  const nodeHash = (left, right) => sha256(concat(Uint8Array.of(1), left, right));

  // RFC 9162 §2.1.3.2: the root an inclusion proof leads to.
  async function rootFromInclusion(index, size, leaf, proof) {
    if (index >= size) throw new Error("index beyond tree size");
    let fn = index;
    let sn = size - 1;
    let r = leaf;
    for (const p of proof) {
      if (sn === 0) throw new Error("proof too long");
      if (fn % 2 === 1 || fn === sn) {
        r = await nodeHash(p, r);
        if (fn % 2 === 0) {
          while (fn % 2 === 0 && fn !== 0) {
            fn = Math.floor(fn / 2);
            sn = Math.floor(sn / 2);
          }
        }
      } else {
        r = await nodeHash(r, p);
      }
      fn = Math.floor(fn / 2);
      sn = Math.floor(sn / 2);
    }
    if (sn !== 0) throw new Error("proof too short");
    return r;
  }

  // A protobuf message's fields: number -> list of values (Number for
  // varints, Uint8Array for length-delimited).
  function protoFields(bytes) {
    const fields = new Map();
    let at = 0;
    function varint() {
      let value = 0;
      let scale = 1;
      for (;;) {
        if (at >= bytes.length) throw new Error("truncated varint");
        const b = bytes[at++];
        value += (b & 0x7f) * scale;
        if ((b & 0x80) === 0) return value;
        scale *= 128;
      }
    }
    while (at < bytes.length) {
      const key = varint();
      const field = Math.floor(key / 8);
      const wire = key % 8;
      let value;
      if (wire === 0) value = varint();
      else if (wire === 2) {
        const len = varint();
        if (at + len > bytes.length) throw new Error("truncated field");
        value = bytes.subarray(at, at + len);
        at += len;
      } else if (wire === 1) at += 8;
      else if (wire === 5) at += 4;
      else throw new Error("unknown wire type " + wire);
      if (!fields.has(field)) fields.set(field, []);
      fields.get(field).push(value);
    }
    return fields;
  }

  // The last occurrence, as protobuf decoders (the ledger's too) read a
  // repeated singular field.
  const one = (fields, n) => (fields.get(n) || []).at(-1);

  // C2SP vkey: <name>+<hex key id>+<base64(0x01 || public key)>.
  async function parseVkey(vkey) {
    // The base64 key may itself contain "+": split at the first two only.
    const first = vkey.indexOf("+");
    const second = vkey.indexOf("+", first + 1);
    if (first < 1 || second < 0) throw new Error("not a vkey: " + vkey);
    const [name, id, key] = [vkey.slice(0, first), vkey.slice(first + 1, second), vkey.slice(second + 1)];
    const raw = b64(key);
    if (raw.length !== 33 || raw[0] !== 1) throw new Error("not an Ed25519 vkey");
    const expected = (await sha256(concat(enc.encode(name), Uint8Array.of(0x0a), raw))).slice(0, 4);
    if (hex(expected) !== id) throw new Error("key id does not match the key");
    return { name, keyId: expected, publicKey: raw.slice(1) };
  }

  // The signed note's text, and the signature by `key` (C2SP signed-note).
  function splitNote(note, key) {
    const blank = note.indexOf("\n\n");
    if (blank < 0) throw new Error("note has no signatures");
    const text = note.slice(0, blank + 1);
    for (const line of note.slice(blank + 2).split("\n")) {
      if (!line.startsWith("\u2014 ")) continue;
      const space = line.lastIndexOf(" ");
      const name = line.slice(2, space);
      let sig;
      try {
        sig = b64(line.slice(space + 1));
      } catch (e) {
        continue; // not a signature this page can read: another key's
      }
      if (name === key.name && sig.length === 68 && equal(sig.slice(0, 4), key.keyId)) {
        return { text, signature: sig.slice(4) };
      }
    }
    throw new Error("no signature by " + key.name);
  }

  async function verifyReceipt(section) {
    const t = TEXT[section.dataset.lang] || TEXT.en;
    const steps = section.querySelector("#verify-steps");
    const result = section.querySelector("#verify-result");
    steps.textContent = "";
    result.className = "";
    result.textContent = t.checking;
    const step = (label, ok, detail) => {
      const li = document.createElement("li");
      li.className = ok ? "ok" : "fail";
      li.textContent = (ok ? "✓ " : "✗ ") + label + (detail ? ": " + detail : "");
      steps.appendChild(li);
      if (!ok) throw new Error(label);
    };
    const attempt = async (label, check) => {
      let value;
      try {
        value = await check();
      } catch (e) {
        step(label, false, e.message);
      }
      if (value === false) step(label, false);
      else step(label, true, typeof value === "string" ? value : "");
      return value;
    };
    try {
      const receiptId = section.dataset.receipt;
      const seq = Number(section.dataset.seq);
      const proof = await attempt(t.fetch, async () => {
        const response = await fetch("/api/v1/receipts/" + encodeURIComponent(receiptId) + "/proof", {
          cache: "no-store",
        });
        const body = await response.json();
        if (!response.ok) throw new Error(body.error || response.status);
        return body;
      });
      const key = await attempt(t.vkey, () => parseVkey(section.dataset.vkey));
      if (!crypto.subtle || !("verify" in crypto.subtle)) throw new Error(t.unsupported);
      let publicKey;
      try {
        publicKey = await crypto.subtle.importKey("raw", key.publicKey, { name: "Ed25519" }, false, ["verify"]);
      } catch (e) {
        result.className = "fail";
        result.textContent = t.unsupported;
        section.dataset.verified = "unsupported";
        return;
      }
      const note = await attempt(t.sig, async () => {
        const signed = splitNote(proof.checkpoint, key);
        if (signed.text.split("\n")[0] !== key.name) throw new Error("origin is not " + key.name);
        const ok = await crypto.subtle.verify({ name: "Ed25519" }, publicKey, signed.signature, enc.encode(signed.text));
        return ok ? signed : false;
      });
      const lines = note.text.split("\n");
      if (!/^(0|[1-9][0-9]*)$/.test(lines[1])) step(t.size, false, "size " + lines[1]);
      const size = Number(lines[1]);
      const root = b64(lines[2]);
      await attempt(t.size, () => (seq < size && size === proof.tree_size ? String(size) : false));
      const entry = b64(proof.entry);
      const leaf = await sha256(concat(Uint8Array.of(0), entry));
      await attempt(t.leaf, () => (hex(leaf) === proof.leaf_hash && proof.seq === seq ? hex(leaf).slice(0, 16) + "…" : false));
      await attempt(t.inclusion, async () => {
        const computed = await rootFromInclusion(seq, size, leaf, proof.inclusion_proof.map(unhex));
        return equal(computed, root) ? t.root + " " + hex(root).slice(0, 16) + "…" : false;
      });
      await attempt(t.entry, () => {
        const ledgerEntry = protoFields(entry);
        if ((one(ledgerEntry, 1) || 0) !== seq) return false;
        const signed = protoFields(one(ledgerEntry, 4));
        const event = protoFields(one(signed, 1));
        // The event's body is a oneof (fields 10 to 26): exactly one.
        const bodies = Array.from(event.keys()).filter((n) => n >= 10 && n <= 26);
        if (bodies.length !== 1 || bodies[0] !== 20 || event.get(20).length !== 1) return false;
        const receipt = one(event, 20);
        const id = new TextDecoder().decode(one(protoFields(receipt), 1));
        return id === receiptId ? id : false;
      });
      result.className = "ok";
      result.textContent = t.valid;
    } catch (e) {
      result.className = "fail";
      result.textContent = e.message === t.unsupported ? t.unsupported : t.invalid;
    }
    section.dataset.verified = result.className;
  }

  function setUp() {
    const section = document.getElementById("verify");
    const button = document.getElementById("verify-button");
    if (section && button) {
      button.addEventListener("click", () => verifyReceipt(section));
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setUp);
  else setUp();
})();
