#!/usr/bin/env python3
"""Writes base/unicode_tables.c: the Unicode data the tokenizer needs, from Python's unicodedata.

    python3 tests/reference/gen_unicode_tables.py      (from the repository root; any Python 3, no packages)

The Unicode version is Python's (unicodedata.unidata_version) and is stated in the generated file. Tables:
  class   ranges of \\p{L} (letter, general category L*), \\p{N} (number, N*) and \\s (White_Space)
  ccc     ranges of code points with the same nonzero canonical combining class
  nfc_qc  ranges of code points after which NFC may change the text: nonzero ccc, NFC_Quick_Check No
          (never in NFC output) or Maybe (may compose with the previous character)
  decomp  full canonical decompositions (recursively applied), Hangul syllables excluded (algorithmic)
  comp    primary composites: (first, second) -> composite, composition exclusions removed, Hangul excluded
White_Space is not exposed by unicodedata; it is listed below from PropList.txt (unchanged since Unicode 6.3).
"""
import os
import sys
import unicodedata as ud

MAX_CP = 0x110000
HANGUL_S, HANGUL_S_COUNT = 0xAC00, 11172
HANGUL_V, HANGUL_V_COUNT = 0x1161, 21
HANGUL_T, HANGUL_T_COUNT = 0x11A7, 28
WHITE_SPACE = [(0x09, 0x0D), (0x20, 0x20), (0x85, 0x85), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A),
               (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000)]


def code_points():
  return (cp for cp in range(MAX_CP) if not 0xD800 <= cp < 0xE000)


def is_hangul_syllable(cp):
  return HANGUL_S <= cp < HANGUL_S + HANGUL_S_COUNT


def ranges(values):
  """values: dict cp -> nonzero value. Returns [(lo, hi, value)] of maximal runs of equal values."""
  out = []
  for cp in sorted(values):
    v = values[cp]
    if out and out[-1][1] == cp - 1 and out[-1][2] == v:
      out[-1][1] = cp
    else:
      out.append([cp, cp, v])
  return out


def canonical_decomposition(cp):
  """One level of the canonical mapping, or None (compatibility mappings start with '<')."""
  d = ud.decomposition(chr(cp))
  if not d or d.startswith("<"):
    return None
  return [int(x, 16) for x in d.split()]


def full_decomposition(cp):
  d = canonical_decomposition(cp)
  if d is None:
    return [cp]
  return [x for c in d for x in full_decomposition(c)]


def build():
  space = {cp for lo, hi in WHITE_SPACE for cp in range(lo, hi + 1)}
  cls, ccc, decomp, comp = {}, {}, {}, {}
  for cp in code_points():
    c = chr(cp)
    cat = ud.category(c)
    if cp in space:
      cls[cp] = 3
    elif cat[0] == "L":
      cls[cp] = 1
    elif cat[0] == "N":
      cls[cp] = 2
    if ud.combining(c):
      ccc[cp] = ud.combining(c)
    if is_hangul_syllable(cp):
      continue
    d = canonical_decomposition(cp)
    if d is None:
      continue
    decomp[cp] = full_decomposition(cp)
    # A primary composite: a two-character canonical mapping that NFC keeps (not composition-excluded).
    if len(d) == 2 and ud.normalize("NFC", c) == c:
      comp[(d[0], d[1])] = cp
  for cp in space:
    assert cls[cp] == 3 and ud.category(chr(cp))[0] not in "LN", hex(cp)
  assert max(len(d) for d in decomp.values()) <= 4   # MAX_DECOMP in base/unicode.c

  qc = {cp: 1 for cp in ccc}
  for cp in decomp:
    if ud.normalize("NFC", chr(cp)) != chr(cp):
      qc[cp] = 1                                   # NFC_QC = No
  for (_, second) in comp:
    qc[second] = 1                                 # NFC_QC = Maybe
  for cp in list(range(HANGUL_V, HANGUL_V + HANGUL_V_COUNT)) + list(range(HANGUL_T + 1, HANGUL_T + HANGUL_T_COUNT)):
    qc[cp] = 1                                     # Hangul vowels and trailing consonants compose
  return ranges(cls), ranges(ccc), ranges(qc), decomp, comp


def self_check(decomp, comp, ccc_ranges):
  """Our NFC over every decomposable character (and its decomposition) must equal unicodedata's."""
  ccc_of = {cp: v for lo, hi, v in ccc_ranges for cp in range(lo, hi + 1)}

  def nfc(s):
    cps = []
    for ch in s:
      cp = ord(ch)
      if is_hangul_syllable(cp):
        cps.extend(x for x in map(ord, ud.normalize("NFD", ch)))
      else:
        cps.extend(decomp.get(cp, [cp]))
    i = 0
    while i < len(cps):                             # canonical ordering: stable sort of nonzero-ccc runs
      j = i
      while j < len(cps) and ccc_of.get(cps[j], 0):
        j += 1
      cps[i:j] = sorted(cps[i:j], key=lambda x: ccc_of[x])
      i = j + 1
    out, starter, last = [], -1, 0
    for cp in cps:
      cc = ccc_of.get(cp, 0)
      if starter >= 0 and (len(out) - 1 == starter or last < cc):
        a, c2 = out[starter], None
        if (a, cp) in comp:
          c2 = comp[(a, cp)]
        elif 0x1100 <= a < 0x1113 and HANGUL_V <= cp < HANGUL_V + HANGUL_V_COUNT:
          c2 = HANGUL_S + ((a - 0x1100) * HANGUL_V_COUNT + cp - HANGUL_V) * HANGUL_T_COUNT
        elif is_hangul_syllable(a) and (a - HANGUL_S) % HANGUL_T_COUNT == 0 and HANGUL_T < cp < HANGUL_T + HANGUL_T_COUNT:
          c2 = a + cp - HANGUL_T
        if c2 is not None:
          out[starter] = c2
          continue
      if cc == 0:
        starter = len(out)
      out.append(cp)
      last = cc
    return "".join(map(chr, out))

  tests = [chr(cp) for cp in decomp] + [ud.normalize("NFD", chr(cp)) for cp in decomp]
  tests += ["a\u0316\u0301", "a\u0301\u0316", "\u1100\u1161\u11a8", "\ud55c\u11ab", "e\u0301\u0301", "\u0301e"]
  for s in tests:
    assert nfc(s) == ud.normalize("NFC", s), [hex(ord(c)) for c in s]


def c_ranges(name, rs):
  lines = [f"const lcc_uni_range {name}[] = {{"]
  row = []
  for lo, hi, v in rs:
    row.append(f"{{0x{lo:X},0x{hi:X},{v}}}")
    if len(row) == 6:
      lines.append("  " + ", ".join(row) + ",")
      row = []
  if row:
    lines.append("  " + ", ".join(row) + ",")
  lines.append("};")
  lines.append(f"const int {name}_n = {len(rs)};")
  return "\n".join(lines)


def c_decomp(decomp):
  pool, entries = [], []
  for cp in sorted(decomp):
    entries.append((cp, len(pool), len(decomp[cp])))
    pool.extend(decomp[cp])
  assert len(pool) < 65536 and max(e[2] for e in entries) < 256
  out = ["const lcc_uni_decomp lcc_uni_decomps[] = {"]
  for i in range(0, len(entries), 6):
    out.append("  " + ", ".join(f"{{0x{c:X},{o},{n}}}" for c, o, n in entries[i:i + 6]) + ",")
  out.append("};")
  out.append(f"const int lcc_uni_decomps_n = {len(entries)};")
  out.append("const uint32_t lcc_uni_decomp_pool[] = {")
  for i in range(0, len(pool), 10):
    out.append("  " + ", ".join(f"0x{c:X}" for c in pool[i:i + 10]) + ",")
  out.append("};")
  return "\n".join(out)


def c_comp(comp):
  out = ["const lcc_uni_comp lcc_uni_comps[] = {"]
  items = sorted(comp.items())
  for i in range(0, len(items), 5):
    out.append("  " + ", ".join(f"{{0x{a:X},0x{b:X},0x{c:X}}}" for (a, b), c in items[i:i + 5]) + ",")
  out.append("};")
  out.append(f"const int lcc_uni_comps_n = {len(items)};")
  return "\n".join(out)


def main():
  root = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
  cls, ccc, qc, decomp, comp = build()
  self_check(decomp, comp, ccc)
  text = "\n\n".join([
      f"// Generated by tests/reference/gen_unicode_tables.py from Unicode {ud.unidata_version} (Python "
      f"{sys.version.split()[0]} unicodedata).\n// Do not edit: re-run the script. Lookups are in unicode.c.\n"
      '#include "unicode.h"',
      "// Character classes of the Qwen2 split pattern: 1 \\p{L}, 2 \\p{N}, 3 \\s (White_Space).\n" +
      c_ranges("lcc_uni_class", cls),
      "// Canonical combining class (0 when absent).\n" + c_ranges("lcc_uni_ccc", ccc),
      "// 1: NFC may change text from this code point on (nonzero ccc, NFC_QC No or Maybe).\n" +
      c_ranges("lcc_uni_nfc_qc", qc),
      "// Full canonical decompositions (Hangul syllables are decomposed algorithmically).\n" + c_decomp(decomp),
      "// Primary composites sorted by (first, second) (Hangul composed algorithmically).\n" + c_comp(comp),
  ]) + "\n"
  path = os.path.join(root, "model", "unicode_tables.c")
  with open(path, "w", encoding="utf-8") as f:
    f.write(text)
  print(f"wrote {path}: Unicode {ud.unidata_version}, {len(cls)} class ranges, {len(ccc)} ccc ranges, "
        f"{len(qc)} nfc_qc ranges, {len(decomp)} decompositions, {len(comp)} compositions")


if __name__ == "__main__":
  main()
