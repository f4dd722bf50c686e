#!/usr/bin/env node
// Checks the JavaScript parser compiled from spec/kvc.ksy against the
// conformance fixtures (spec/kvc.md, section 18).
//
//   node check.js PARSER_DIR [MANIFEST]
//
// PARSER_DIR holds Kvc.js as written by
//   node compile.js --target javascript --outdir PARSER_DIR spec/kvc.ksy
// MANIFEST defaults to spec/fixtures/manifest.json next to this script.
//
// Every fixture with "valid": true is parsed, and the decoded fields are
// compared with the manifest's "decoded" object: every header field, the
// SHA-256 of text and payload, the tool map entries, the title, the unknown
// sections flag and area, the identity name and the identity check on the
// fixture's name at level full. Not compared: `dsv4_check`
// (the description does not interpret the payload, section 19). Prints one line per file and then
// "N passed, M failed"; exits 1 if any failed.
'use strict';

const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const Module = require('module');

const here = __dirname;

function usage() {
  process.stderr.write('usage: node check.js PARSER_DIR [MANIFEST]\n');
  process.exit(2);
}

// Loads a generated module from PARSER_DIR, resolving its
// require('kaitai-struct/KaitaiStream') from this directory's node_modules.
function loadGenerated(file) {
  const m = new Module(file, module);
  m.filename = file;
  m.paths = Module._nodeModulePaths(here);
  m._compile(fs.readFileSync(file, 'utf8'), file);
  return m.exports;
}

const sha256 = (bytes) => crypto.createHash('sha256').update(bytes).digest('hex');
const sha1 = (bytes) => crypto.createHash('sha1').update(bytes).digest('hex');

// u8 fields: the JS runtime returns numbers (exact up to 2^53); accept BigInt
// too, in case a runtime returns it.
function toBig(v) {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
  if (typeof v === 'boolean') return v;
  return v;
}

function u64le(v) {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(v));
  return b;
}

function checkFile(Kvc, KaitaiStream, fixturesDir, entry) {
  const problems = [];
  const expectEq = (what, got, want) => {
    const g = toBig(got);
    const w = toBig(want);
    if (g !== w) problems.push(`${what}: got ${JSON.stringify(String(got))}, want ${JSON.stringify(String(want))}`);
  };

  const data = fs.readFileSync(path.join(fixturesDir, entry.name));
  const ab = data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength);
  const kvc = new Kvc(new KaitaiStream(ab));
  const dec = entry.decoded;
  const h = kvc.header;

  // Header fields, by the manifest's names (section 18.2).
  const got = {
    version: h.version,
    quant_bits: h.quantBits,
    save_reason: h.saveReason,
    ext_flags: h.extFlags,
    model_id: h.modelId,
    tokens: h.tokens,
    hits: h.hits,
    context: h.context,
    payload_abi: h.payloadAbi,
    created_at: h.createdAt,
    last_used: h.lastUsed,
    payload_bytes: h.payloadBytes,
    text_bytes: h.textBytes,
    header_crc: h.headerCrc,
    text_crc: h.textCrc,
    payload_crc: h.payloadCrc,
    sections_crc: h.sectionsCrc,
  };
  for (const [k, want] of Object.entries(dec.header)) {
    if (k === 'save_reason_name') continue;
    if (!(k in got)) { problems.push(`header.${k}: not decoded by the parser`); continue; }
    expectEq(`header.${k}`, got[k], want);
  }
  for (const k of Object.keys(got)) {
    if (!(k in dec.header)) problems.push(`header.${k}: missing from the manifest`);
  }

  // Save reason name: the enum member, with '_' as the spec's '-'; values
  // without a member are `unknown` (section 4.1).
  const member = Kvc.SaveReason[h.saveReasonName];
  const name = member === undefined ? 'unknown' : member.toLowerCase().replace(/_/g, '-');
  expectEq('header.save_reason_name', name, dec.header.save_reason_name);

  // Header size and appended offset.
  expectEq('header.header_size', h.headerSize, h.version === 1 ? 52 : 68);
  expectEq('appended_offset', kvc.appendedOffset,
    (h.version === 1 ? 52 : 68) + Number(dec.header.text_bytes) + Number(dec.header.payload_bytes));

  // Text and payload.
  expectEq('text length', kvc.text.length, dec.header.text_bytes);
  expectEq('text_sha256', sha256(kvc.text), dec.text_sha256);
  expectEq('payload length', kvc.payload.length, dec.header.payload_bytes);
  expectEq('payload_sha256', sha256(kvc.payload), dec.payload_sha256);

  // Flag bits.
  const flags = Number(dec.header.ext_flags);
  expectEq('has_tool_map', h.hasToolMap, (flags & 0x01) !== 0);
  expectEq('is_responses_key', h.isResponsesKey, (flags & 0x02) !== 0);
  expectEq('is_thinking_key', h.isThinkingKey, (flags & 0x04) !== 0);
  expectEq('has_title', h.hasTitle, (flags & 0x08) !== 0);
  expectEq('unknown_section_bits', h.unknownSectionBits, flags >> 4);

  // Tool map.
  if (dec.tool_map === null) {
    if (kvc.toolMap !== undefined && kvc.toolMap !== null) problems.push('tool_map: present, want none');
  } else if (!kvc.toolMap) {
    problems.push(`tool_map: missing, want ${dec.tool_map.length} entries`);
  } else {
    const tm = kvc.toolMap;
    expectEq('tool_map.version', tm.version, 1);
    expectEq('tool_map.count', tm.numEntries, dec.tool_map.length);
    const n = Math.min(tm.entries.length, dec.tool_map.length);
    expectEq('tool_map.entries.length', tm.entries.length, dec.tool_map.length);
    for (let i = 0; i < n; i++) {
      const e = tm.entries[i];
      const w = dec.tool_map[i];
      expectEq(`tool_map[${i}].id`, Buffer.from(e.id).toString('utf8'), w.id);
      expectEq(`tool_map[${i}].id_bytes`, e.lenId, Buffer.byteLength(w.id, 'utf8'));
      expectEq(`tool_map[${i}].dsml_bytes`, e.lenDsml, w.dsml_bytes);
      expectEq(`tool_map[${i}].dsml length`, e.dsml.length, w.dsml_bytes);
      expectEq(`tool_map[${i}].dsml_sha256`, sha256(e.dsml), w.dsml_sha256);
    }
  }

  // Title.
  if (dec.title === null) {
    if (kvc.titleSection !== undefined && kvc.titleSection !== null) problems.push('title: present, want none');
  } else if (!kvc.titleSection) {
    problems.push(`title: missing, want ${JSON.stringify(dec.title)}`);
  } else {
    const t = kvc.titleSection;
    expectEq('title', Buffer.from(t.title).toString('utf8'), dec.title);
    expectEq('title length', t.lenTitle, Buffer.byteLength(dec.title, 'utf8'));
  }

  // Unknown sections and the rest of the file.
  expectEq('unknown_sections', h.hasUnknownSections, dec.unknown_sections);
  if (!dec.unknown_sections) expectEq('rest length (trailing bytes)', kvc.rest.length, 0);
  if (dec.unknown_area === null) {
    if (dec.unknown_sections) problems.push('unknown_area: null in the manifest, but bits 4..7 are set');
  } else {
    expectEq('unknown_area.offset', data.length - kvc.rest.length, dec.unknown_area.offset);
    expectEq('unknown_area.length', kvc.rest.length, dec.unknown_area.length);
  }
  expectEq('parsed up to', kvc._io.pos, data.length);

  // Identity name (section 9): SHA-1 of the text, or of title || created_at.
  if (dec.identity_name) {
    const id = h.hasTitle && kvc.titleSection
      ? sha1(Buffer.concat([Buffer.from(kvc.titleSection.title), u64le(h.createdAt)]))
      : sha1(kvc.text);
    expectEq('identity_name', `${id}.kv`, dec.identity_name);
    // The identity check at level full on the fixture's own name (manifest
    // key "identity", schema kvc-fixtures/4): names of the identity form
    // (40 lowercase hex digits, ".kv") are compared, others are not checked.
    const checked = /^[0-9a-f]{40}\.kv$/.test(entry.name);
    const mismatch = checked && `${id}.kv` !== entry.name;
    const want = entry.identity && entry.identity.full;
    expectEq('identity.full', mismatch ? 'identity_mismatch' : 'ok', want ? want.error : 'ok');
  }

  return problems;
}

function main() {
  const args = process.argv.slice(2);
  if (args.length < 1 || args.length > 2) usage();
  const parserDir = path.resolve(args[0]);
  const manifestPath = path.resolve(args[1] || path.join(here, '..', 'fixtures', 'manifest.json'));
  const fixturesDir = path.dirname(manifestPath);

  const KaitaiStream = require('kaitai-struct/KaitaiStream');
  const generated = loadGenerated(path.join(parserDir, 'Kvc.js'));
  // 0.11 exports { Kvc }; 0.10 exported the class itself.
  const Kvc = typeof generated === 'function' ? generated : generated.Kvc;
  if (typeof Kvc !== 'function') throw new Error(`${parserDir}/Kvc.js does not export Kvc`);

  const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8'));
  if (manifest.schema !== 'kvc-fixtures/4') throw new Error(`unexpected manifest schema ${manifest.schema}`);

  let passed = 0;
  let failed = 0;
  for (const entry of manifest.files) {
    if (entry.valid !== true) continue;
    let problems;
    try {
      if (!entry.decoded) throw new Error('manifest entry is valid but has no "decoded" object');
      problems = checkFile(Kvc, KaitaiStream, fixturesDir, entry);
    } catch (e) {
      problems = [`parse error: ${e && e.message || e}`];
    }
    if (problems.length === 0) {
      passed++;
      console.log(`ok   ${entry.name}`);
    } else {
      failed++;
      console.log(`FAIL ${entry.name}: ${problems.join('; ')}`);
    }
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed > 0 || passed === 0 ? 1 : 0);
}

main();
