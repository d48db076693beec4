// Checking an audit entry in the browser, trusting nothing the daemon says
// about it but its public key (docs/audit.md):
//
// 1. the entry's canonical JSON (members sorted by code point at every
//    depth, no whitespace, integers exactly as sent: the entry is parsed
//    here without going through floating point) and its leaf hash,
//    SHA-256(0x00 ‖ bytes), recomputed from the entry itself;
// 2. the inclusion proof of that leaf in the signed head's tree, RFC 9162
//    §2.1.3.2, nodes SHA-256(0x01 ‖ left ‖ right);
// 3. the head's Ed25519 signature over "warren-audit/sth/v1" ‖ 0x00 ‖
//    size (u64 BE) ‖ timestamp_ms (u64 BE) ‖ root (32 bytes), with the
//    public key of GET /v1/audit/heads, through WebCrypto.
//
// An entry edited in the daemon's database fails at step 2: its hash is
// not the leaf the signed tree holds.

const encoder = new TextEncoder();

// ---- exact JSON ------------------------------------------------------------

// A number kept as the text it was sent as.
class Exact {
  constructor(text) {
    this.text = text;
  }
}

const NUMBER = /-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/y;
const STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;

// Parses JSON, keeping every number as an `Exact`.
export function parseExact(text) {
  let at = 0;
  const fail = (what) => {
    throw new Error(`bad JSON at ${at}: ${what}`);
  };
  const space = () => {
    while (at < text.length && " \t\n\r".includes(text[at])) at += 1;
  };
  const value = () => {
    space();
    const c = text[at];
    if (c === "{") {
      at += 1;
      const object = {};
      space();
      if (text[at] === "}") {
        at += 1;
        return object;
      }
      for (;;) {
        space();
        if (text[at] !== '"') fail("expected a key");
        const key = string();
        space();
        if (text[at] !== ":") fail("expected ':'");
        at += 1;
        object[key] = value();
        space();
        if (text[at] === ",") at += 1;
        else if (text[at] === "}") {
          at += 1;
          return object;
        } else fail("expected ',' or '}'");
      }
    }
    if (c === "[") {
      at += 1;
      const array = [];
      space();
      if (text[at] === "]") {
        at += 1;
        return array;
      }
      for (;;) {
        array.push(value());
        space();
        if (text[at] === ",") at += 1;
        else if (text[at] === "]") {
          at += 1;
          return array;
        } else fail("expected ',' or ']'");
      }
    }
    if (c === '"') return string();
    for (const [word, result] of [["true", true], ["false", false], ["null", null]]) {
      if (text.startsWith(word, at)) {
        at += word.length;
        return result;
      }
    }
    NUMBER.lastIndex = at;
    const number = NUMBER.exec(text);
    if (!number) fail("unexpected character");
    at += number[0].length;
    return new Exact(number[0]);
  };
  const string = () => {
    STRING.lastIndex = at;
    const end = STRING.exec(text);
    if (!end) fail("bad string");
    at += end[0].length;
    return JSON.parse(end[0]);
  };
  const result = value();
  space();
  if (at !== text.length) fail("trailing data");
  return result;
}

// Code-point order (UTF-8 byte order), not JavaScript's UTF-16 order.
function byCodePoint(a, b) {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i += 1) {
    const d = x[i].codePointAt(0) - y[i].codePointAt(0);
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

// The canonical JSON of a value parsed by `parseExact`.
export function canonical(value) {
  if (value instanceof Exact) return value.text;
  if (value === null || typeof value === "boolean") return String(value);
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  const keys = Object.keys(value).sort(byCodePoint);
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(",")}}`;
}

// A plain copy of a parsed value, for showing (numbers as JavaScript numbers).
export function plain(value) {
  if (value instanceof Exact) return Number(value.text);
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

// ---- hashes ----------------------------------------------------------------

function hex(bytes) {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function fromHex(text) {
  if (!/^([0-9a-f]{2})*$/.test(text)) throw new Error("not hex");
  return Uint8Array.from(text.match(/../g) || [], (pair) => Number.parseInt(pair, 16));
}

function fromBase64(text) {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

async function sha256(...parts) {
  const length = parts.reduce((n, p) => n + p.length, 0);
  const all = new Uint8Array(length);
  let at = 0;
  for (const part of parts) {
    all.set(part, at);
    at += part.length;
  }
  return new Uint8Array(await crypto.subtle.digest("SHA-256", all));
}

export async function leafHash(entry) {
  return sha256(Uint8Array.of(0), encoder.encode(canonical(entry)));
}

const node = (left, right) => sha256(Uint8Array.of(1), left, right);

// RFC 9162 §2.1.3.2, with sizes beyond 32 bits (no bitwise operators).
async function rootFromInclusion(leaf, index, size, proof) {
  if (index >= size) throw new Error(`entry ${index} is beyond the signed tree of ${size}`);
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) throw new Error("the proof is longer than the tree allows");
    if (fn % 2 === 1 || fn === sn) {
      r = await node(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = await node(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new Error("the proof is shorter than the tree needs");
  return r;
}

async function headSigned(head, publicKeyHex) {
  const message = new Uint8Array(20 + 8 + 8 + 32);
  message.set(encoder.encode("warren-audit/sth/v1"), 0);
  message[19] = 0;
  const view = new DataView(message.buffer);
  view.setBigUint64(20, BigInt(head.size));
  view.setBigUint64(28, BigInt(head.timestamp_ms));
  message.set(fromHex(head.root_hash), 36);
  const key = await crypto.subtle.importKey("raw", fromHex(publicKeyHex), { name: "Ed25519" }, false, ["verify"]);
  return crypto.subtle.verify({ name: "Ed25519" }, key, fromBase64(head.signature), message);
}

// Checks `entry` (as parsed by `parseExact`) against `proof` (the daemon's
// inclusion proof, parsed by `parseExact`) and the log's public key.
// Answers {ok: true, size, root} or {ok: false, why}.
export async function verifyEntry(entry, proof, publicKeyHex) {
  if (!(window.crypto && crypto.subtle)) {
    return { ok: false, why: "this page has no WebCrypto (it needs https or localhost)" };
  }
  try {
    const head = plain(proof.head);
    if (!(await headSigned(head, publicKeyHex))) {
      return { ok: false, why: `the signed head of size ${head.size} does not verify with the log's key` };
    }
    const index = Number(entry.index.text);
    if (Number(proof.index.text) !== index) return { ok: false, why: "the proof is for another entry" };
    const leaf = await leafHash(entry);
    const path = proof.proof.map(fromHex);
    const root = await rootFromInclusion(leaf, index, head.size, path);
    if (hex(root) !== head.root_hash) {
      return {
        ok: false,
        why: `entry ${index} as shown (leaf ${hex(leaf).slice(0, 12)}…) is not the entry the signed log of ${head.size} holds: it was changed`,
      };
    }
    return { ok: true, size: head.size, root: head.root_hash };
  } catch (error) {
    return { ok: false, why: error.message };
  }
}
