#!/usr/bin/env python3
"""Tokenizer fixtures for livecc.c (tests/test_tokenizer.c), made with Hugging Face `tokenizers`.

README
------
CI has no Python: the outputs are committed. Re-run from the repository root only when the fixture format or
the pinned versions (tests/reference/requirements.txt: tokenizers 0.21.4, transformers 4.50.0) change:

    .venv-ref/bin/python tests/reference/make_tokenizer_fixtures.py [--unicode-diff]

Deterministic (fixed seeds: the same files on every run, except that safetensors may write the metadata keys
in another order); a few seconds. --unicode-diff also probes every code point for the places where HF's
Unicode data differs from Python's (half a minute more) and prints the summary. Findings (tokenizers 0.21.4,
Python 3.11 = Unicode 14.0): HF's regex engine (Oniguruma) knows Unicode 16.0, so 9392 letters and digits
assigned in Unicode 15.0-16.0 are \p{L}/\p{N} to HF and "other" to us; HF's NFC uses older data (Unicode 9.0, judging by what differs), so 99
characters of Unicode 10.0-14.0 (combining marks whose class it does not know, one new composition U+11938)
normalize differently. \s is White_Space in both, and (?i) also folds U+017F LONG S to s (implemented).

What it writes
--------------
tests/fixtures/tokenizer/qwen2_like/tokenizer.json
    A Qwen2-configured byte-level BPE (normalizer NFC; pre_tokenizer Sequence[Split(Qwen2 regex, Isolated),
    ByteLevel(add_prefix_space false, use_regex false)]; decoder and post_processor ByteLevel) trained by
    BpeTrainer (initial alphabet = the 256 byte characters) to 8000 tokens on a generated multilingual corpus,
    then Qwen2's 14 special tokens as added tokens 8000-8013 (special, normalized false). Its configuration is
    checked equal to what transformers' Qwen2Converter produces from the same vocab and merges. Merges are
    stored as ["left", "right"] pairs (tokenizers >= 0.20).
tests/fixtures/tokenizer/cases.safetensors
    The test lines (generated: mixed scripts with composed and decomposed marks, digits of many scripts,
    whitespace runs, contractions in any case, code, emoji, special tokens inside text, a few long lines) and
    what HF gives for them with the qwen2_like tokenizer. Tensors (line i = text[text_off[i]:text_off[i+1]]):
      text U8, text_off [n+1]              the lines (UTF-8)
      ids I32, ids_off [n+1]               Tokenizer.encode(line).ids
      nfc_line I32 [k], nfc U8, nfc_off [k+1]
                                           unicodedata NFC of the lines it changes (others: NFC == line)
      dec_line I32 [k], dec U8, dec_off [k+1]
                                           Tokenizer.decode(ids) where it differs from the line's NFC
      skip_line, skip, skip_off            decode(ids, skip_special_tokens=True) where it differs from decode(ids)
                                           (the first 300 such lines)
    Offsets are I32. (ignore_merges = true changes no line with this tokenizer: every token is reachable by its
    merges; tests/test_tokenizer.c checks that option on a hand-made vocabulary instead.)
    Metadata: tokenizers and Python/Unicode versions, counts.
configs/tokenizer/tiny/tokenizer.json, tokenizer_config.json
    The demo model's tokenizer (configs/model/tiny.json, vocab 1024): the same configuration with exactly 1000
    regular tokens (ids 0-999) trained on English chat-like text and the synthetic commentary vocabulary, then
    <|endoftext|> 1000, <|im_start|> 1001, <|im_end|> 1002, <|object_ref_start|>..<|quad_end|> 1003-1008,
    <|vision_start|> 1009, <|vision_end|> 1010, <|vision_pad|> 1011, <|image_pad|> 1012, <|video_pad|> 1013.
    Merges are written as "left right" strings (the older format real Qwen2 files use), so the two fixtures
    cover both. tokenizer_config.json makes the folder loadable by transformers' AutoTokenizer (Qwen2TokenizerFast,
    Qwen2-VL chat template).

Self-checks (asserts)
---------------------
* the qwen2_like configuration equals Qwen2Converter's (normalizer, pre_tokenizer, decoder, post_processor,
  BPE options); encode with and without add_special_tokens agree (Qwen2 adds none);
* no fixture line contains a character whose class (\\p{L}, \\p{N}, \\s) or NFC differs between HF tokenizers
  (its regex engine and its NFC use other Unicode versions than Python's unicodedata) and Python;
* tiny: 1000 regular tokens; every colour and shape word with its leading space, " ..." and the role words are
  one token; the special ids above; "\\n" is 198 as in Qwen2; the legacy-merges file and the AutoTokenizer folder
  encode exactly like the trained tokenizer.
"""

import argparse
import json
import os
import random
import sys
import tempfile
import unicodedata as ud
from pathlib import Path

import numpy as np
import tokenizers
from safetensors.numpy import save_file
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

REPO = Path(__file__).resolve().parents[2]
PATTERN = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
            "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
            "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"]
COLOURS = "red green blue yellow orange purple white black pink brown gray cyan".split()
SHAPES = "circle square triangle star cross ring diamond heart".split()
QWEN2VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}"
    "<|im_end|>\n{% else %}{% for content in message['content'] %}{% if content['type'] == 'image' or 'image' in "
    "content or 'image_url' in content %}{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}"
    "Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] "
    "== 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}"
    "Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>{% elif 'text' in content "
    "%}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}{% if add_generation_prompt %}"
    "<|im_start|>assistant\n{% endif %}")

# ---------------------------------------------------------------------------------------------------------------
# the multilingual corpus

ENGLISH = """the of and to in is you that it he was for on are as with his they at be this have from or one had by
word but not what all were we when your can said there use an each which she do how their if will up other about out
many then them these so some her would make like him into time has look two more write go see number no way could
people my than first water been call who oil its now find long down day did get come made may part over new sound take
only little work know place year live me back give most very after thing our just name good sentence man think say
great where help through much before line right too mean old any same tell boy follow came want show also around form
three small set put end does another well large must big even such because turn here why ask went men read need land
different home us move try kind hand picture again change off play spell air away animal house point page letter
mother answer found study still learn should really dad mom America world Monday London Paris OpenAI GPU CUDA HTTP JSON""".split()
CONTRACTIONS = ["it's", "IT'S", "It'S", "we'll", "WE'LL", "We'Ll", "they're", "THEY'RE", "They'rE", "I've", "I'VE",
                "I'm", "I'M", "he'd", "HE'D", "don't", "DON'T", "can't", "'sup", "''", "'", "'s", "'t'", "’s", "don’t",
                "'ſ", "'ſtuff", "rock'n'roll", "'tis", "'ll'll", "o'clock", "y'all'd've", "' s", "'\u017f", "'Ll",
                # the letters after the apostrophe would merge with the contraction's: the split decides
                "'same", "'time", "'really", "'very", "'more", "'little", "'day", "'SAME", "'Really", "'ſtate", "'ſome",
                "'ſame", "'Dad", "'MOM", "'TIME", "'Little"]
LATIN = ["café", "naïve", "façade", "über", "Ångström", "señor", "crème brûlée", "Zürich", "São Paulo", "Dvořák",
         "Łódź", "Ærøskøbing", "œuvre", "Þórr", "Việt Nam", "Nguyễn", "tiếng Việt", "Ελληνικά", "ΐ", "Ὀδυσσεύς",
         "français", "Kraków", "İstanbul", "ǅemal", "ǈubljana", "ﬁnancial", "Straße", "ĳssel", "Ǆ", "ŉ",
         "ſtate", "ſome", "ſame", "Leſſing", "Geſchichte", "ſtuff"]
GREEK_CYRILLIC = ["καλημέρα κόσμε", "Αθήνα", "ἀρχή", "Привет, мир", "Ёлка", "Україна", "їжак", "ЁЖИК", "Беларусь",
                  "Йошкар-Ола", "Ѿ", "ӂ"]
CJK = ["你好，世界", "中文分词测试", "東京都", "日本語のテキスト", "ひらがな", "カタカナ", "が", "ぱぴぷぺぽ", "한국어",
       "안녕하세요", "서울특별시", "漢字", "𠀋𡈽𡌛", "﨑", "丽"]
RTL = ["مرحبا بالعالم", "اللُّغَةُ العَرَبِيَّة", "بِسْمِ", "שָׁלוֹם", "עִבְרִית", "בְּרֵאשִׁית", "فارسی", "اردو"]
INDIC = ["हिन्दी", "नमस्ते", "क़िला", "ज़िंदगी", "বাংলা", "কো", "தமிழ்", "கொ", "ಕನ್ನಡ", "ไทย", "ภาษาไทย", "ພາສາລາວ",
         "ကမ္ဘာ", "ខ្មែរ", "ᬅᬓ᭄ᬱᬭ"]
DIGITS = ["0", "7", "42", "2024", "3.14159", "1,000,000", "-17", "+1e-9", "٣٤٥", "۱۲۳", "१२३", "১২৩", "１２３", "x²", "½",
          "Ⅻ", "①②", "𝟙𝟚", "٠", "0x1F", "v2.0.1", "12:30", "99%", "$5", "€10", "¥"]
PUNCT = ["...", "!!!", "?!", "—", "–", "«»", "“quoted”", "‘single’", "¿qué?", "¡sí!", "()", "[]", "{}", "@#", "$%^&*",
         "->", "=>", "::", "//", "/*", "*/", "~~~", "…", "·", "•", "§", "¶", "†", "‰", "±", "×", "÷", "√", "∞", "≈", "≠",
         "≤", "→", "⇒", "∀x∃y", "™", "©", "®", "°C", "µs", "Ω", "℃", "№", "\\", "|", "`", "^", "_"]
EMOJI = ["😀", "👍🏽", "👨‍👩‍👧‍👦", "🇫🇷", "❤️", "🔥🔥", "🚀", "🤖", "✅", "⚠️", "☕", "🎉🎊", "🏳️‍🌈", "🧑🏿‍💻", "#️⃣", "🅰️",
         "🐍", "👀", "💯", "🙏🏼", "😂😂😂"]
CODE = ["def foo(x):\n    return x ** 2\n", "int main() { printf(\"%d\\n\", 42); }", "<div class=\"a\">hi</div>",
        "{\"key\": [1, 2.5e-3, null], \"ok\": true}", "https://example.com/a?b=c&d=e#f", "/usr/local/bin/python3",
        "user@example.org", "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}", "x = y != z && w || !v;",
        "SELECT * FROM t WHERE a >= 10;", "import numpy as np  # comment", "    indented line", "if x:\r\n    pass",
        "a_b-c.d", "CamelCaseName", "snake_case_name", "__init__", "0xDEADBEEF", "#include <stdio.h>"]
SPACES = [" ", "  ", "   ", "    ", "\t", "\t\t", "\n", "\n\n", "\r\n", " \n", "\n ", " \t ", "\u00a0", "\u3000",
          "\u2009", "\u200b", "\u0085", "\u2028", "\x0b", "\x0c", "\x1c", "\u180e", "\ufeff", "\u202f", "  \n  ", "\r",
          "\n\n\n", " \r\n \r\n"]
SPECIAL_TEXT = ["<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n",
                "<|im_start|>user\n<|vision_start|><|video_pad|><|video_pad|><|vision_end|>What happens?<|im_end|>\n",
                "<|im_start|>assistant\n", "<|endoftext|>", "<|im_start", "<|im_end", "<|", "|>", "<|unknown|>",
                "<<|im_end|>>", "<|im_end|><|im_start|>", "<|image_pad|>" * 3, "<|box_start|>(1,2),(3,4)<|box_end|>",
                "<|object_ref_start|>cat<|object_ref_end|>", "<|quad_start|><|quad_end|>", "<|vision_pad|>",
                "<|im_end|>\u0301e", "e<|im_end|>\u0301", "<|im_end|>\u0338x", " <|im_start|> ", "\n<|endoftext|>\n", "<|IM_START|>"]

# Decomposed or reordered sequences: NFC must compose, reorder or keep them.
MARKS = ["e\u0301", "a\u0301\u0316", "a\u0316\u0301", "e\u0323\u0302", "e\u0302\u0323", "u\u0308\u0304", "A\u030a",
         "\u212b", "\u2126", "K\u0301", "\u0340\u0341", "a\u0344", "\u0958", "\u0915\u093c", "\u1100\u1161", "\u1100\u1161\u11a8",
         "\uac00\u11a8", "\u304b\u3099", "\u30cf\u309a", "\u09c7\u09be", "\u0bc6\u0bbe", "\u03b9\u0308\u0301", "o\u031b\u0303",
         "\u05e9\u05bc\u05c1", "\u05e9\u05c1\u05bc", "\u0627\u0653", "\u0628\u0650\u0651", "\u0628\u0651\u0650", "x\u0307\u0323",
         "\u0301", "\u0301\u0301a", "s\u0323\u0307", "\u1e9b\u0323", "\u00c5\u0301", "q\u0307\u0323", "\u0e01\u0e38\u0e48",
         "i\u0307", "n\u0303\u0303", "\u0041\u030a\u0301", "z\u035c\u0361", "\u0f40\u0fb5", "\u0f71\u0f72", "\u0f73",
         "\u2adc", "\u2add\u0338", "=\u0338", "<\u0338", "\u1b05\u1b35", "\u110a\u1175"]


def nfd_some(rng, s):
  """s in NFC, NFD, or with each character decomposed at random."""
  r = rng.random()
  if r < 0.6:
    return ud.normalize("NFC", s)
  if r < 0.85:
    return ud.normalize("NFD", s)
  return "".join(ud.normalize("NFD", c) if rng.random() < 0.5 else c for c in s)


def fragment(rng):
  k = rng.random()
  if k < 0.30:
    words = [rng.choice(ENGLISH) for _ in range(rng.randint(1, 8))]
    if rng.random() < 0.3:
      words = [w.upper() if rng.random() < 0.2 else w.capitalize() if rng.random() < 0.3 else w for w in words]
    return " ".join(words) + rng.choice(["", ".", ",", "!", "?", ":", ";"])
  if k < 0.38:
    return rng.choice(CONTRACTIONS)
  if k < 0.50:
    return nfd_some(rng, rng.choice(LATIN + GREEK_CYRILLIC))
  if k < 0.56:
    return nfd_some(rng, rng.choice(CJK))
  if k < 0.62:
    return nfd_some(rng, rng.choice(RTL + INDIC))
  if k < 0.67:
    return rng.choice(DIGITS) if rng.random() < 0.5 else str(rng.randint(0, 10 ** rng.randint(1, 12)))
  if k < 0.73:
    return "".join(rng.choice(PUNCT) for _ in range(rng.randint(1, 3)))
  if k < 0.77:
    return "".join(rng.choice(EMOJI) for _ in range(rng.randint(1, 3)))
  if k < 0.83:
    return rng.choice(CODE)
  if k < 0.88:
    return rng.choice(SPECIAL_TEXT)
  if k < 0.95:
    return rng.choice(MARKS)
  return rng.choice(SPACES)


def make_line(rng):
  parts = []
  for _ in range(rng.randint(1, 10)):
    parts.append(fragment(rng))
    parts.append(rng.choice(SPACES) if rng.random() < 0.25 else "" if rng.random() < 0.3 else " ")
  if rng.random() < 0.1:
    parts.insert(0, rng.choice(SPACES))
  return "".join(parts)


def long_lines(rng):
  para = " ".join(make_line(rng) for _ in range(150))
  return [para, "a" * 3000, "ab" * 1500 + " end", "1234567890" * 300, " " * 2000 + "word", "\n" * 500 + "x",
          "e" + "\u0301\u0316\u0323\u0302" * 200, "😀" * 500, "x" + "<|im_end|>" * 300, "ĀāĂăĄą" * 400,
          "".join(rng.choice(ENGLISH) for _ in range(800))]


def corpus(seed, n):
  rng = random.Random(seed)
  return [make_line(rng) for _ in range(n)]


# ---------------------------------------------------------------------------------------------------------------
# tokenizers

def qwen2_tokenizer():
  tok = Tokenizer(models.BPE(dropout=None, unk_token=None, continuing_subword_prefix="", end_of_word_suffix="",
                             fuse_unk=False, byte_fallback=False))
  tok.normalizer = normalizers.NFC()
  tok.pre_tokenizer = pre_tokenizers.Sequence([
      pre_tokenizers.Split(Regex(PATTERN), behavior="isolated", invert=False),
      pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False, trim_offsets=False)])
  tok.decoder = decoders.ByteLevel()
  tok.post_processor = processors.ByteLevel(trim_offsets=False)
  return tok


def train(texts, vocab_size):
  tok = qwen2_tokenizer()
  trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
  tok.train_from_iterator(texts, trainer)
  assert tok.get_vocab_size() == vocab_size, (tok.get_vocab_size(), vocab_size)
  # The trainer resets the BPE options; rebuild the model with Qwen2's (those of Qwen2Converter).
  trained = json.loads(tok.to_str())["model"]
  tok.model = models.BPE(vocab=trained["vocab"], merges=[tuple(m) for m in trained["merges"]], dropout=None,
                         unk_token=None, continuing_subword_prefix="", end_of_word_suffix="", fuse_unk=False,
                         byte_fallback=False)
  tok.add_special_tokens([AddedToken(t, special=True, normalized=False, lstrip=False, rstrip=False, single_word=False)
                          for t in SPECIALS])
  for i, t in enumerate(SPECIALS):
    assert tok.token_to_id(t) == vocab_size + i
  return tok


def check_like_converter(tok):
  """The configuration must be what transformers' Qwen2Converter makes from the same vocab and merges."""
  from transformers import Qwen2Tokenizer
  from transformers.convert_slow_tokenizer import Qwen2Converter
  ours = json.loads(tok.to_str())
  model = ours["model"]
  with tempfile.TemporaryDirectory() as d:
    with open(os.path.join(d, "vocab.json"), "w", encoding="utf-8") as f:
      json.dump(model["vocab"], f, ensure_ascii=False)
    with open(os.path.join(d, "merges.txt"), "w", encoding="utf-8") as f:
      f.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in model["merges"]))
    slow = Qwen2Tokenizer(os.path.join(d, "vocab.json"), os.path.join(d, "merges.txt"))
    ref = json.loads(Qwen2Converter(slow).converted().to_str())
  for key in ["normalizer", "pre_tokenizer", "decoder", "post_processor", "truncation", "padding"]:
    assert ours[key] == ref[key], (key, ours[key], ref[key])
  for key in ref["model"]:
    if key not in ("vocab", "merges"):
      assert model[key] == ref["model"][key], (key, model[key], ref["model"][key])
  assert model["vocab"] == ref["model"]["vocab"] and model["merges"] == [list(m) for m in ref["model"]["merges"]]
  return ours


def unicode_disagreements(text_chars):
  """Characters (of text_chars) whose class or NFC differs between HF tokenizers and Python's unicodedata."""
  split = pre_tokenizers.Split(Regex(PATTERN), behavior="isolated", invert=False)
  nfc = normalizers.NFC()
  space = {c for c in map(chr, [*range(9, 14), 0x20, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B), 0x2028, 0x2029,
                                0x202F, 0x205F, 0x3000])}

  def pieces(s):
    return [p for p, _ in split.pre_tokenize_str(s)]

  bad = []
  for c in sorted(text_chars):
    if c in "\r\n":
      continue
    cat = ud.category(c)[0]
    hf_letter = pieces("x" + c) == ["x" + c]
    hf_number = not hf_letter and pieces(c + c) == [c, c]
    hf_space = c != " " and not hf_letter and not hf_number and pieces(c + ".") == [c, "."]
    py_space = c in space and c != " "
    # combining class (a mark of class 1 after it, one of class 240 before it: one of them moves unless the
    # classes agree), decomposition and composition
    norm_ok = all(nfc.normalize_str(s) == ud.normalize("NFC", s)
                  for s in (c, "a" + c + "\u0334", "a\u0345" + c, ud.normalize("NFD", c), c + "\u0308", c + "\u0301"))
    if hf_letter != (cat == "L") or hf_number != (cat == "N") or hf_space != py_space or not norm_ok:
      bad.append(c)
  return bad


def unicode_diff_report():
  every = (chr(cp) for cp in range(0x110000) if not 0xD800 <= cp < 0xE000)
  bad = unicode_disagreements(set(every))
  unassigned = [c for c in bad if ud.category(c) == "Cn"]
  print(f"unicode: {len(bad)} code points differ between HF tokenizers {tokenizers.__version__} and Python "
        f"unicodedata {ud.unidata_version}; {len(unassigned)} of them are unassigned in {ud.unidata_version} "
        f"(newer letters/digits HF's regex knows); the others: "
        + " ".join(f"U+{ord(c):04X}" for c in bad if c not in unassigned))


def blob(strings):
  data = [s.encode("utf-8") for s in strings]
  off = np.zeros(len(data) + 1, dtype=np.int32)
  off[1:] = np.cumsum([len(d) for d in data])
  return np.frombuffer(b"".join(data), dtype=np.uint8).copy(), off


def exceptions(name, lines, values, base, limit=None):
  """Tensors for the (first limit) lines whose value differs from base (a dict: name_line, name, name_off)."""
  idx = [i for i in range(len(lines)) if values[i] != base[i]][:limit]
  out = {f"{name}_line": np.array(idx, dtype=np.int32)}
  if values and isinstance(values[0], str):
    out[name], out[f"{name}_off"] = blob([values[i] for i in idx])
  else:
    out[name] = np.array([x for i in idx for x in values[i]], dtype=np.int32)
    out[f"{name}_off"] = np.cumsum([0] + [len(values[i]) for i in idx]).astype(np.int32)
  return out, len(idx)


def contraction_probes(tok):
  """Lines where the contraction alternative decides the ids: BPE of the contraction + a word differs from
  BPE of each alone (a split elsewhere would give other ids). Up to 4 words per contraction spelling.
  (Computed after training, so they are not in the training corpus.)"""
  byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)

  def bpe(s):
    return [t.value for t in tok.model.tokenize(byte_level.pre_tokenize_str(s)[0][0])]

  vocab_words = (tok.decode([i]) for i in range(tok.get_vocab_size()))
  words = sorted({w for w in vocab_words if w.isalpha() and len(w) > 1} | {w for w in ENGLISH if w.isalpha()})
  probes = []
  for c in ["'s", "'S", "'\u017f", "'t", "'T", "'re", "'RE", "'rE", "'ve", "'VE", "'m", "'M", "'ll", "'LL", "'lL",
            "'d", "'D"]:
    hits = [c + w for w in words if bpe(c + w) != bpe(c) + bpe(w)]
    assert hits or c != "'\u017f", c   # the long s must be probed (see make_qwen2_like); others where found
    probes += hits[:4]
  return probes


def make_qwen2_like(out_dir):
  # Without "'ſ" in training no merge joins the apostrophe and the long s, so the probes can tell whether the
  # contraction alternative took the long s (case folding) or not.
  train_texts = [line for line in corpus(1, 30000) if "'\u017f" not in line]
  tok = train(train_texts, 8000)
  check_like_converter(tok)
  (out_dir / "qwen2_like").mkdir(parents=True, exist_ok=True)
  with open(out_dir / "qwen2_like" / "tokenizer.json", "w", encoding="utf-8") as f:   # compact: fixture size
    json.dump(json.loads(tok.to_str()), f, ensure_ascii=False, separators=(",", ":"))
  tok = Tokenizer.from_file(str(out_dir / "qwen2_like" / "tokenizer.json"))

  rng = random.Random(2)
  lines = corpus(3, 10000) + long_lines(rng) + contraction_probes(tok)
  bad = unicode_disagreements({c for line in lines for c in line})
  assert not bad, "fixture characters where HF and Python Unicode data differ: " + repr(bad)
  ids = [e.ids for e in tok.encode_batch(lines)]
  assert ids == [e.ids for e in tok.encode_batch(lines, add_special_tokens=False)]
  nfc = [ud.normalize("NFC", s) for s in lines]
  dec = tok.decode_batch(ids, skip_special_tokens=False)
  skip = tok.decode_batch(ids, skip_special_tokens=True)

  tensors = {}
  tensors["text"], tensors["text_off"] = blob(lines)
  tensors["ids"] = np.array([x for l in ids for x in l], dtype=np.int32)
  tensors["ids_off"] = np.cumsum([0] + [len(l) for l in ids]).astype(np.int32)
  t, n_nfc = exceptions("nfc", lines, nfc, lines)
  tensors.update(t)
  t, n_dec = exceptions("dec", lines, dec, nfc)
  tensors.update(t)
  t, n_skip = exceptions("skip", lines, skip, dec, limit=300)
  tensors.update(t)
  meta = {"tokenizers": tokenizers.__version__, "python": sys.version.split()[0], "unicode": ud.unidata_version,
          "lines": str(len(lines)), "ids": str(len(tensors["ids"]))}
  save_file(tensors, str(out_dir / "cases.safetensors"), metadata=meta)
  print(f"qwen2_like: {len(lines)} lines, {sum(map(len, lines))} characters, {len(tensors['ids'])} ids; NFC changes "
        f"{n_nfc} lines, decode differs from NFC on {n_dec}, skip_special on {n_skip} (first 300 stored)")


# ---------------------------------------------------------------------------------------------------------------
# the tiny tokenizer of the demo model

def tiny_corpus(seed, n):
  rng = random.Random(seed)
  chat = ["What is happening in the video?", "Describe the scene.", "What do you see now?", "Sure, here is what I see.",
          "Please tell me more.", "Thank you!", "The video shows shapes moving around.", "Can you explain that?",
          "I think the shape is moving to the left.", "Yes, that is right.", "No, it is not.", "Hello, how are you?",
          "I am fine, thanks.", "Let me look again.", "There are two shapes on the screen."]
  out = []
  for _ in range(n):
    r = rng.random()
    if r < 0.15:
      out.append("system\nYou are a helpful assistant.\nuser\n" + rng.choice(chat) + "\nassistant\n" + rng.choice(chat))
    elif r < 0.3:
      words = [rng.choice(ENGLISH) for _ in range(rng.randint(3, 12))]
      words = [w.capitalize() if rng.random() < 0.2 else w for w in words]
      out.append(" ".join(words) + rng.choice([".", "?", "!", ","]))
    elif r < 0.45:
      t = rng.randint(0, 120)
      out.append(f"user\nTime={t}.0-{t + 1}.0s\nassistant\n ...")
    else:
      words = []
      for _ in range(rng.randint(1, 4)):
        words += [rng.choice(["a", "the"]), rng.choice(["big", "small", ""]), rng.choice(COLOURS), rng.choice(SHAPES),
                  rng.choice(["is", "now", "", "is now"]), "moving", rng.choice(["left", "right", "up", "down"])]
      out.append(" ".join(w for w in words if w) + rng.choice([" ...", ". ...", " ... ...", ""]))
  return out


def make_tiny(out_dir):
  tok = train(tiny_corpus(4, 20000), 1000)
  spec = json.loads(tok.to_str())
  for w in [" " + w for w in COLOURS + SHAPES] + [" ...", "system", "user", "assistant"]:
    assert len(tok.encode(w).ids) == 1, (w, tok.encode(w).tokens)
  assert tok.token_to_id("Ċ") == 198 and tok.encode("\n").ids == [198]
  assert tok.get_vocab_size() == 1014 and max(spec["model"]["vocab"].values()) == 999
  # legacy merges: "left right"
  spec["model"]["merges"] = [f"{a} {b}" for a, b in spec["model"]["merges"]]
  out_dir.mkdir(parents=True, exist_ok=True)
  with open(out_dir / "tokenizer.json", "w", encoding="utf-8") as f:
    json.dump(spec, f, ensure_ascii=False, indent=1)
  added = {str(1000 + i): {"content": t, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False,
                           "special": True} for i, t in enumerate(SPECIALS)}
  config = {"add_prefix_space": False, "added_tokens_decoder": added, "bos_token": None,
            "chat_template": QWEN2VL_CHAT_TEMPLATE, "clean_up_tokenization_spaces": False, "eos_token": "<|im_end|>",
            "errors": "replace", "model_max_length": 32768, "pad_token": "<|endoftext|>", "split_special_tokens": False,
            "tokenizer_class": "Qwen2Tokenizer", "unk_token": None}
  with open(out_dir / "tokenizer_config.json", "w", encoding="utf-8") as f:
    json.dump(config, f, ensure_ascii=False, indent=2)
  from transformers import AutoTokenizer
  reloaded, auto = Tokenizer.from_file(str(out_dir / "tokenizer.json")), AutoTokenizer.from_pretrained(str(out_dir))
  probe = corpus(5, 300) + tiny_corpus(6, 300)
  assert [e.ids for e in reloaded.encode_batch(probe)] == [e.ids for e in tok.encode_batch(probe)]
  assert [auto(p)["input_ids"] for p in probe] == [e.ids for e in tok.encode_batch(probe)]
  msgs = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Time=0.0-3.0s"}]},
          {"role": "assistant", "content": " a big red circle now moving left ..."}]
  ids = auto.apply_chat_template(msgs)
  assert ids[:1] == [1001] and 1013 in ids and ids[-2:] == [1002, 198], ids
  print(f"tiny: {len(spec['model']['merges'])} merges; ' ...' = {tok.token_to_id('Ġ...')}, "
        f"system/user/assistant = {[tok.token_to_id(w) for w in ['system', 'user', 'assistant']]}")


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--unicode-diff", action="store_true", help="probe every code point (HF vs Python Unicode data)")
  args = ap.parse_args()
  assert tokenizers.__version__ == "0.21.4", tokenizers.__version__
  make_qwen2_like(REPO / "tests" / "fixtures" / "tokenizer")
  make_tiny(REPO / "configs" / "tokenizer" / "tiny")
  if args.unicode_diff:
    unicode_diff_report()


if __name__ == "__main__":
  main()
