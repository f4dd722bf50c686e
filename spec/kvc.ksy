meta:
  id: kvc
  title: KVC disk KV-cache file (ds4 session checkpoint), versions 1 and 2
  file-extension: kv
  license: MIT
  ks-version: '0.10'
  endian: le
doc: |
  A KVC file (`.kv`) stores one checkpoint of an LLM inference engine's
  session state (KV cache and related state) together with the rendered
  prompt text it was computed from (spec/kvc.md, section 1).

  Layout (section 3): a fixed header of S bytes (52 in version 1, 68 in
  version 2) that ends with the text length T, then T bytes of text, then
  P bytes of opaque payload, then the appended sections in the order of
  their `ext_flags` bits (KTM tool map for bit 0, title for bit 3, opaque
  unknown sections for bits 4..7), up to end of file. All integers are
  little-endian; there is no padding or alignment anywhere.

  This description is informative; where it and spec/kvc.md differ, the
  spec governs (section 19). It describes the byte layout only. It does NOT
  perform:

  * the CRC32C checks of version 2 (header, text, payload and sections CRC,
    sections 2.3 and 6) - Kaitai Struct cannot compute CRC32C, so the four
    CRC fields are only shown as stored. A file that parses here may still
    be corrupt;
  * the reader limits of section 10 (text, payload, tool map, title and
    appended-area limits);
  * the value rules that a verifier reports as errors (quant_bits 2 or 4,
    tokens not 0, reserved bytes 0, KTM id/DSML lengths not 0, no trailing
    bytes after the known sections when bits 4..7 are clear, ...); they are
    noted in the field docs but not enforced, so that damaged files can
    still be explored;
  * the optional DSV4 payload check (section 8.4) - the payload is opaque
    here;
  * the identity check of the file name (section 9);
  * the foreign-variant detection of section 13: a file of a foreign fork
    with version byte 2 is laid out as if it were a genuine version 2 file
    (only its failing header CRC would reveal it).

  Only the magic, the version byte and the KTM magic and version are
  validated, because they decide the layout.
doc-ref: spec/kvc.md
seq:
  - id: header
    type: header
    doc: Fixed header, 52 bytes (version 1) or 68 bytes (version 2); sections 4 to 6.
  - id: text
    size: header.text_bytes
    doc: |
      Rendered prompt text, `T` = header.text_bytes bytes at offset S
      (sections 5 and 6). Kept as raw bytes: it is expected to be UTF-8, but
      the container does not require it, and a strict UTF-8 decoder would
      fail on files a conforming reader accepts. In version 2 its CRC32C is
      header.text_crc (not checked here).
  - id: payload
    size: header.payload_bytes
    doc: |
      Opaque model payload, `P` = header.payload_bytes bytes at offset S+T
      (section 8: for ds4 a DS4 session payload starting with `DSV4`, see
      header.payload_abi). Not interpreted here. In version 2 its CRC32C is
      header.payload_crc (not checked here). Real payloads are large (tens
      of MiB and more); tools that load the whole file into memory, such as
      the Web IDE, may struggle with them. The JavaScript runtime used by the
      Web IDE (kaitai-struct 0.11.0) truncates byte counts to 32 bits, so
      there a P of 2 GiB or more, or a corrupt P (such as one whose sum
      S+T+P overflows 64 bits, `length_overflow`), is silently misread
      rather than reported.
  - id: tool_map
    type: tool_map
    if: header.has_tool_map
    doc: KTM tool-id map, present when ext_flags bit 0 is set (sections 7.1 and 7.2).
  - id: title_section
    type: title_section
    if: header.has_title
    doc: Session title, present when ext_flags bit 3 is set; follows the tool map (sections 7.1 and 7.3).
  - id: rest
    size-eos: true
    doc: |
      Every byte after the known sections, to end of file. When any of
      ext_flags bits 4..7 is set (header.has_unknown_sections) this is the
      opaque area of the unknown sections (section 7.4), possibly empty.
      When none of them is set it MUST be empty; a non-empty `rest` then is
      the error `trailing_bytes` (sections 7.1 and 12). In version 2 the
      sections CRC covers tool map, title and this area (not checked here).
instances:
  appended_offset:
    value: header.header_size + header.text_bytes + header.payload_bytes
    doc: Absolute offset S+T+P where the appended area starts (sections 2.2 and 7.1).
types:
  header:
    doc: |
      Fixed header (sections 4, 5 and 6). Bytes 0..47 are the same in both
      versions; the rest depends on the version byte. Every field is exposed
      as its raw stored value (section 4).
    seq:
      - id: magic
        contents: KVC
        doc: ASCII `KVC` (section 4).
      - id: version
        type: u1
        valid:
          any-of: [1, 2]
        doc: |
          Container version: 1 (52-byte header, no checksums, section 5) or 2
          (68-byte header with CRC32C values, section 6). Any other value is
          unsupported (`unsupported_version`).
      - id: quant_bits
        type: u1
        doc: Routed-expert quantization bits the state was made with; MUST be 2 or 4 (section 4; not enforced here).
      - id: save_reason
        type: u1
        doc: |
          Why the checkpoint was written, raw byte (section 4.1). Any value
          is accepted; 8..255 are not defined and are reported as `unknown`
          with the raw value. See save_reason_name for the named view.
      - id: ext_flags
        type: u1
        doc: |
          Extension flags (section 4.2): bit 0 tool map section, bit 1
          responses-visible key, bit 2 thinking-visible key, bit 3 title
          section, bits 4..7 one unknown appended section each. See the
          has_* / is_* instances.
      - id: model_id
        type: u1
        doc: Model id (section 4.3); 0 = DeepSeek V4 Flash (and every file of early ds4 builds), any other value accepted.
      - id: tokens
        type: u4
        doc: Cached token count; MUST NOT be 0 (section 4; not enforced here).
      - id: hits
        type: u4
        doc: Number of cache hits served from this file (section 4; updated in place by a touch, section 15.1).
      - id: context
        type: u4
        doc: Context size in tokens the checkpoint was written for (section 4).
      - id: payload_abi
        type: u1
        doc: |
          Payload ABI (section 4.4): 0 = early ds4 builds (DS4 session
          payload), 2 = DS4 session payload, other values not defined. Never
          interpreted by the container.
      - id: reserved
        size: 3
        doc: Bytes 21..23; MUST be 0 (section 4; not enforced here). Nonzero bytes hint at a foreign variant (section 13).
      - id: created_at
        type: u8
        doc: Creation time, Unix seconds (section 4). Part of the title-based file identity (section 9).
      - id: last_used
        type: u8
        doc: Last use time, Unix seconds (section 4).
      - id: payload_bytes
        type: u8
        doc: |
          `P`, the payload byte count (section 4). Default reader limit
          1 TiB (section 10; not enforced here).
      - id: tail
        type:
          switch-on: version
          cases:
            1: header_v1_tail
            2: header_v2_tail
        doc: |
          Version-specific end of the header from byte 48: the text length
          (version 1, section 5) or four CRC32C values and the text length
          (version 2, section 6).
    instances:
      header_size:
        value: 'version == 1 ? 52 : 68'
        doc: '`S`, the header size in bytes (section 2.2).'
      text_bytes:
        value: 'version == 1 ? tail.as<header_v1_tail>.text_bytes : tail.as<header_v2_tail>.text_bytes'
        doc: '`T`, the text byte count, at offset 48 (version 1) or 64 (version 2).'
      header_crc:
        value: 'version == 2 ? tail.as<header_v2_tail>.header_crc : 0'
        doc: Stored header CRC32C (version 2); 0 for version 1, which has none.
      text_crc:
        value: 'version == 2 ? tail.as<header_v2_tail>.text_crc : 0'
        doc: Stored text CRC32C (version 2); 0 for version 1, which has none.
      payload_crc:
        value: 'version == 2 ? tail.as<header_v2_tail>.payload_crc : 0'
        doc: Stored payload CRC32C (version 2); 0 for version 1, which has none.
      sections_crc:
        value: 'version == 2 ? tail.as<header_v2_tail>.sections_crc : 0'
        doc: Stored sections CRC32C (version 2); 0 for version 1, which has none.
      save_reason_name:
        value: save_reason
        enum: save_reason
        doc: |
          save_reason as an enum (section 4.1). Values 8..255 have no enum
          member: depending on the target language they show as the bare
          number or as null; they mean `unknown` (the raw value stays in
          save_reason).
      has_tool_map:
        value: (ext_flags & 0x01) != 0
        doc: ext_flags bit 0, `tool_map`; a KTM tool-id map section is appended (section 7.2).
      is_responses_key:
        value: (ext_flags & 0x02) != 0
        doc: ext_flags bit 1, `responses_key`; the text key is a responses-visible transcript. Adds no bytes.
      is_thinking_key:
        value: (ext_flags & 0x04) != 0
        doc: ext_flags bit 2, `thinking_key`; the text key is a thinking-visible transcript. Adds no bytes.
      has_title:
        value: (ext_flags & 0x08) != 0
        doc: ext_flags bit 3, `title`; a session title section is appended (section 7.3) and the file identity is title-based (section 9).
      unknown_section_bits:
        value: (ext_flags & 0xf0) >> 4
        doc: ext_flags bits 4..7 shifted down (bit 4 = 1); each set bit announces one appended section of unknown format (section 7.4).
      has_unknown_sections:
        value: (ext_flags & 0xf0) != 0
        doc: Any of ext_flags bits 4..7 is set; the bytes after the known sections (`rest`) are then opaque unknown sections (section 7.4).
  header_v1_tail:
    doc: Version 1 header bytes 48..51 (section 5).
    seq:
      - id: text_bytes
        type: u4
        doc: |
          `T`, the text byte count. Default reader limit 256 MiB
          (section 10; not enforced here).
  header_v2_tail:
    doc: |
      Version 2 header bytes 48..67 (section 6). The CRCs are CRC32C
      (Castagnoli, section 2.3); Kaitai Struct cannot compute CRC32C, so
      they are shown as stored and not checked.
    seq:
      - id: header_crc
        type: u4
        doc: |
          CRC32C of the 68 header bytes with bytes 48..51 taken as zero
          (section 6).
      - id: text_crc
        type: u4
        doc: CRC32C of the T text bytes (section 6).
      - id: payload_crc
        type: u4
        doc: CRC32C of the P payload bytes (section 6).
      - id: sections_crc
        type: u4
        doc: |
          CRC32C of every byte from S+T+P to end of file (the whole appended
          area, unknown sections included); 0 when there are none
          (section 6).
      - id: text_bytes
        type: u4
        doc: |
          `T`, the text byte count. Default reader limit 256 MiB
          (section 10; not enforced here).
  tool_map:
    doc: |
      KTM tool-id map (section 7.2): auxiliary replay memory mapping tool-call
      ids to the DSML text of the call; not model state. The section ends
      after the last entry; there is no length prefix.
    seq:
      - id: magic
        contents: KTM
        doc: ASCII `KTM`.
      - id: version
        type: u1
        valid: 1
        doc: KTM version; MUST be 1.
      - id: num_entries
        type: u4
        doc: |
          Entry count (`count` in the spec); 0 is valid. Default reader limit
          400000 entries (section 10; not enforced here).
      - id: entries
        type: tool_entry
        repeat: expr
        repeat-expr: num_entries
        doc: Entries, back to back, in file order.
  tool_entry:
    doc: One KTM entry (section 7.2). Ids and DSML are opaque bytes (UTF-8 expected, not required).
    seq:
      - id: len_id
        type: u4
        doc: '`I` (`id_bytes` in the spec); MUST be 1..256 (section 10; not enforced here).'
      - id: len_dsml
        type: u4
        doc: '`D` (`dsml_bytes` in the spec); MUST be 1..536870912 (section 10; not enforced here).'
      - id: id
        size: len_id
        doc: Tool-call id bytes.
      - id: dsml
        size: len_dsml
        doc: DSML text bytes of the tool call.
  title_section:
    doc: Session title section (section 7.3).
    seq:
      - id: len_title
        type: u4
        doc: |
          `L` (`title_bytes` in the spec); 0 is valid. Default reader limit
          1 MiB (section 10; not enforced here).
      - id: title
        size: len_title
        doc: |
          Title bytes. Writers write UTF-8, but readers must not reject
          invalid UTF-8, so the title is kept as raw bytes (decode it with
          replacement characters for display). Together with created_at it
          gives the file identity name (section 9).
enums:
  save_reason:
    0:
      id: unknown
      doc: '`unknown`; also the meaning of every value 8..255 (section 4.1).'
    1:
      id: cold
      doc: '`cold`'
    2:
      id: continued
      doc: '`continued`'
    3:
      id: evict
      doc: '`evict`'
    4:
      id: shutdown
      doc: '`shutdown`'
    5:
      id: agent_system
      doc: '`agent-system`'
    6:
      id: agent_session
      doc: '`agent-session`'
    7:
      id: sys_prefix
      doc: '`sys-prefix` (later ds4 builds)'
