#!/usr/bin/env python3
"""Hugging Face reference fixtures for livecc.c (Qwen2-VL forward/backward parity tests).

README
------
CI has no Python: everything this script writes is committed under tests/fixtures/. Re-run it only when the
fixture format or the pinned reference versions change. From the repository root:

    python -m venv .venv-ref && .venv-ref/bin/pip install -r tests/reference/requirements.txt \
        && .venv-ref/bin/python tests/reference/make_fixtures.py

(CPU only; a CPU torch wheel is enough: add `--extra-index-url https://download.pytorch.org/whl/cpu` to the pip
command to avoid the CUDA wheels.) It takes well under a minute and is deterministic: fixed seeds, one thread.

What it writes
--------------
tests/fixtures/tiny_b/{config.json,model.safetensors}
    TINY-B of spec/QWEN2VL.md section 8 (vocab 1024, hidden 128, 4 heads / 2 kv heads (GQA), untied lm_head,
    mrope_section [4,6,6], vision depth 2, embed_dim 64, 2 heads, mlp_ratio 4).
tests/fixtures/tiny_t/{config.json,model.safetensors}
    tied embeddings, no GQA, other dims (hidden 96, 3 heads of 32, intermediate 160, vision embed_dim 48,
    vision head_dim 24, mlp_ratio 2.0).
  Both are saved with save_pretrained (fp32 safetensors, metadata {"format":"pt"}, legacy tensor names
  `model.*`, `visual.*`, `lm_head.weight`; the tied model has no lm_head.weight). Every parameter is
  overwritten with seeded random values of useful magnitude (HF's 0.02 init makes the logits nearly constant):
  linear/conv weights N(0,1)/sqrt(fan_in), embedding N(0,1), biases 0.1*N(0,1), norm weights 1+0.1*N(0,1),
  LayerNorm biases 0.1*N(0,1). Exception: the tied tiny_t embedding (which is also its lm_head) is
  N(0,1)/sqrt(hidden), the linear rule -- N(0,1) gave |logits| ~ 80, a saturated softmax and a loss of ~70.
  NOTE: save_pretrained of transformers 4.50 rewrites rope_scaling to
  {"type":"default","mrope_section":[...],"rope_type":"default"} (the hub files say "type":"mrope").

tests/fixtures/case_{image,video,tied,1d}.safetensors
    case_image (tiny_b): one image (grid 1x6x8 -> 12 tokens) in a 3-turn chat.
    case_video (tiny_b): LiveCC streaming sample: 4 video chunks (grids 3x4x6, 1x4x6 x3), one silent turn.
    case_tied  (tiny_t): image (1x4x4) then video chunks (2x4x4) and (1x4x4); the image and the videos go
                         through the ViT in two separate calls (HF pixel_values / pixel_values_videos).
    case_1d    (tiny_b): the inputs of case_video with explicit 1-D position ids arange(T) on all 3 axes
                         (what LiveCC's Liger-patched forward used after the first step; LIVECC.md 4.1).
  Token ids: <|endoftext|> 1000, <|im_start|> 1001, <|im_end|> 1002, <|vision_start|> 1009,
  <|vision_end|> 1010, <|vision_pad|> 1011, <|image_pad|> 1012, <|video_pad|> 1013, "\\n" 198, "system" 948,
  "user" 872, "assistant" 91, " ..." 503; text ids are random in [0,1000) minus those five.
  Tensors (fp32 unless noted; batch dimension dropped):
    input_ids I32 [T]; labels I32 [T] (LiveCC rule: only each assistant turn's content and its <|im_end|>);
    pixel_values [n_patches,1176] (all items' rows in order of appearance); grid_thw I32 [n_items,3];
    item_kind I32 [n_items] (0 image, 1 video); position_ids I32 [3,T] (exactly what HF fed the rotary
    embedding); rope_delta I32 [1];
    vit.embed [N,E] (patch_embed output), vit.block.<b> [N,E] (vision block outputs) -- only when a single ViT
    call covers every item (not case_tied); merger [n_vis_tokens,C] (merger output, appearance order);
    hidden.0 [T,C] (inputs_embeds after the vision rows are scattered in = decoder layer 0 input),
    hidden.<l> (output of decoder layer l-1, before the final norm), final_norm [T,C], logits [T,V],
    loss [1] (HF's mean shifted CE with labels), grad.<legacy param name> for every parameter.
  case_1d (size budget) stores only input_ids, labels, grid_thw, item_kind, position_ids, rope_delta, hidden.*,
  logits and loss: its pixel_values are those of case_video.safetensors (metadata "pixel_values_from"), and it
  has no vit.*/merger/final_norm/grad.* tensors.
  Metadata of every case file: {"format":"pt","model":"tiny_b"|"tiny_t","transformers":"4.50.0",
  "torch":"2.6.0","case":"case_..."}.

Self-checks (asserts) done while generating
-------------------------------------------
* HF uses get_rope_index (captured at the rotary embedding) in the M-RoPE cases and equals an independent numpy
  implementation of the canonical rule of QWEN2VL.md 2.4 (also on extra synthetic layouts, e.g. a video with
  grid_t > max(grid_h, grid_w)/2 and the worked example of 2.4); case_1d feeds arange(T).
* An independent float64 numpy forward written from the spec formulas (conv3d == linear on the 1176-column row,
  vision 2-D RoPE angles in (by,bx,dy,dx) row order, block-diagonal ViT attention per temporal group, merger =
  view of 4 consecutive rows, appearance-order scatter, scalar M-RoPE, GQA head mapping, shifted mean CE)
  matches every stored activation, the logits and the loss.
* labels built structurally equal the LiveCC rule applied to input_ids.
* The saved model folders reload with from_pretrained and reproduce the stored logits bit for bit.
"""

import argparse
import json
import math
import os
import shutil
import struct
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import transformers
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration
from transformers.models.qwen2_vl import modeling_qwen2_vl as mq

REPO = Path(__file__).resolve().parents[2]

# ---------------------------------------------------------------------------------------------------------------
# token ids (TINY-B remap of the Qwen2 special tokens; ordinary "words" are ids < 1000)
ENDOFTEXT = 1000
IM_START = 1001
IM_END = 1002
VISION_START = 1009
VISION_END = 1010
VISION_PAD = 1011
IMAGE_PAD = 1012
VIDEO_PAD = 1013
NL = 198            # "\n"
SYSTEM = 948        # "system"    (8948 % 1000)
USER = 872          # "user"
ASSISTANT = 91      # "assistant" (77091 % 1000)
ELLIPSIS = 503      # " ..."      (2503 % 1000), LiveCC's end-of-turn indicator
TEXT_POOL = [i for i in range(1000) if i not in (NL, SYSTEM, USER, ASSISTANT, ELLIPSIS)]

TORCH_VERSION = torch.__version__.split("+")[0]
HF_VERSION = transformers.__version__
FIXTURE_BUDGET = 18_000_000  # "18 MB", decimal (stricter than MiB)


def base_config():
    return {
        "architectures": ["Qwen2VLForConditionalGeneration"],
        "model_type": "qwen2_vl",
        "vocab_size": 1024,
        "hidden_size": 128,
        "intermediate_size": 352,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "hidden_act": "silu",
        "max_position_embeddings": 32768,
        "rms_norm_eps": 1e-06,
        "rope_theta": 1000000.0,
        "rope_scaling": {"type": "mrope", "mrope_section": [4, 6, 6]},
        "tie_word_embeddings": False,
        "use_sliding_window": False,
        "sliding_window": 32768,
        "max_window_layers": 2,
        "attention_dropout": 0.0,
        "initializer_range": 0.02,
        "use_cache": True,
        "torch_dtype": "float32",
        "bos_token_id": ENDOFTEXT,
        "eos_token_id": IM_END,
        "vision_start_token_id": VISION_START,
        "vision_end_token_id": VISION_END,
        "vision_token_id": VISION_PAD,
        "image_token_id": IMAGE_PAD,
        "video_token_id": VIDEO_PAD,
        "vision_config": {
            "depth": 2, "embed_dim": 64, "mlp_ratio": 4, "num_heads": 2,
            "in_chans": 3, "in_channels": 3, "hidden_size": 128, "hidden_act": "quick_gelu",
            "patch_size": 14, "spatial_patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2,
        },
    }


def tiny_b_config():
    return base_config()


def tiny_t_config():
    c = base_config()
    c.update(hidden_size=96, intermediate_size=160, num_attention_heads=3, num_key_value_heads=3,
             tie_word_embeddings=True)
    c["vision_config"].update(embed_dim=48, num_heads=2, mlp_ratio=2.0, hidden_size=96)
    return c


# ---------------------------------------------------------------------------------------------------------------
# model construction

def build_model(cfg_dict, seed):
    config = Qwen2VLConfig(**json.loads(json.dumps(cfg_dict)))
    torch.manual_seed(seed)
    model = Qwen2VLForConditionalGeneration._from_config(config, attn_implementation="eager",
                                                          torch_dtype=torch.float32)
    # eager everywhere, as requested (the vision attention class is picked from the vision sub-config)
    for blk in model.visual.blocks:
        assert type(blk.attn) is mq.VisionAttention, type(blk.attn)
    for layer in model.model.layers:
        assert type(layer.self_attn) is mq.Qwen2VLAttention, type(layer.self_attn)
    assert model.model.embed_tokens.padding_idx is None  # a padding_idx would zero a row and its gradient
    if cfg_dict["tie_word_embeddings"]:
        assert model.lm_head.weight is model.model.embed_tokens.weight
    else:
        assert model.lm_head.weight is not model.model.embed_tokens.weight
    randomize(model, seed)
    model.train()  # dropout is 0 everywhere
    return model


def randomize(model, seed):
    """Overwrite every parameter with seeded values of useful magnitude (see module docstring)."""
    g = torch.Generator().manual_seed(seed)
    done = set()
    with torch.no_grad():
        for mname, mod in model.named_modules():
            for pname, p in mod.named_parameters(recurse=False):
                if id(p) in done:  # tied lm_head: already set through embed_tokens
                    continue
                shape = tuple(p.shape)
                if isinstance(mod, (nn.Linear, nn.Conv3d)) and pname == "weight":
                    fan_in = p[0].numel()
                    v = torch.randn(shape, generator=g) / math.sqrt(fan_in)
                elif isinstance(mod, nn.Embedding) and pname == "weight":
                    v = torch.randn(shape, generator=g)
                    if model.config.tie_word_embeddings:
                        # the same tensor is the lm_head: N(0,1) would give |logits| ~ 80 and a saturated
                        # softmax (loss ~ 70); use the linear rule N(0,1)/sqrt(fan_in = hidden) instead
                        v = v / math.sqrt(shape[1])
                elif isinstance(mod, (mq.Qwen2RMSNorm, nn.LayerNorm)) and pname == "weight":
                    v = 1.0 + 0.1 * torch.randn(shape, generator=g)
                elif pname == "bias":  # Linear / LayerNorm biases
                    v = 0.1 * torch.randn(shape, generator=g)
                else:
                    raise AssertionError(f"unhandled parameter {mname}.{pname} in {type(mod).__name__}")
                p.copy_(v)
                done.add(id(p))
    assert done == {id(p) for p in model.parameters()}, "some parameter was not randomized"


LEGACY_PREFIXES = ("model.", "visual.", "lm_head.")


def to_legacy_name(name):
    # transformers >= 4.52 in-memory layout (QWEN2VL.md 4.2) -> legacy; identity for 4.50
    if name.startswith("model.language_model."):
        return "model." + name[len("model.language_model."):]
    if name.startswith("model.visual."):
        return "visual." + name[len("model.visual."):]
    return name


def save_model(model, out_dir, log):
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        st = Path(tmp) / "model.safetensors"
        assert st.exists(), os.listdir(tmp)
        with safe_open(str(st), "pt") as f:
            meta = f.metadata()
            keys = list(f.keys())
        if any(not k.startswith(LEGACY_PREFIXES) or k.startswith(("model.language_model.", "model.visual."))
               for k in keys):
            sd = load_file(str(st))
            save_file({to_legacy_name(k): v.contiguous() for k, v in sd.items()}, str(st),
                      metadata={"format": "pt"})
            log.append(f"  renamed {len(keys)} tensors to the legacy layout")
        shutil.copyfile(Path(tmp) / "config.json", out_dir / "config.json")
        shutil.copyfile(st, out_dir / "model.safetensors")
    # checks on what was written
    sd = load_file(str(out_dir / "model.safetensors"))
    with safe_open(str(out_dir / "model.safetensors"), "pt") as f:
        assert f.metadata() == {"format": "pt"}, f.metadata()
    want = {n: p for n, p in model.named_parameters()}
    assert set(sd) == set(want), (sorted(set(sd) ^ set(want)))
    for n, t in sd.items():
        assert n.startswith(LEGACY_PREFIXES), n
        assert t.dtype == torch.float32, (n, t.dtype)
        assert torch.equal(t, want[n].detach()), n
    if model.config.tie_word_embeddings:
        assert "lm_head.weight" not in sd
    else:
        assert "lm_head.weight" in sd
    return sd


# ---------------------------------------------------------------------------------------------------------------
# samples

class Sample:
    """Hand-built chat-template token sequence (no tokenizer)."""

    def __init__(self, seed):
        self.g = torch.Generator().manual_seed(seed)
        self.ids = []
        self.items = []          # (kind, (t, h, w)) in order of appearance; kind 0 image, 1 video
        self.spans = []          # (first content index, index of the closing <|im_end|>) per assistant turn

    def text(self, n):
        idx = torch.randint(len(TEXT_POOL), (n,), generator=self.g).tolist()
        self.ids += [TEXT_POOL[i] for i in idx]

    def open(self, role):
        self.ids += [IM_START, role, NL]

    def close(self):
        self.ids += [IM_END, NL]

    def vision(self, kind, grid):
        t, h, w = grid
        assert h % 2 == 0 and w % 2 == 0
        self.ids += [VISION_START] + [IMAGE_PAD if kind == 0 else VIDEO_PAD] * (t * h * w // 4) + [VISION_END]
        self.items.append((kind, tuple(grid)))

    def assistant(self, n_words, ellipsis):
        self.open(ASSISTANT)
        first = len(self.ids)
        self.text(n_words)
        if ellipsis:
            self.ids.append(ELLIPSIS)
        self.spans.append((first, len(self.ids)))
        self.close()

    def system(self):
        self.open(SYSTEM)   # sys-text(5) = "system" "\n" + 3 words
        self.text(3)
        self.close()

    def labels(self):
        lab = [-100] * len(self.ids)
        for a, e in self.spans:
            assert self.ids[e] == IM_END
            lab[a:e + 1] = self.ids[a:e + 1]
        return lab

    def pixels(self):
        rows = [torch.randn(t * h * w, 1176, generator=self.g) for _, (t, h, w) in self.items]
        return torch.cat(rows, 0)


def livecc_labels(ids):
    """LIVECC.md 3.7, applied to the token ids only."""
    ids = list(ids)
    lab = [-100] * len(ids)
    for s in range(len(ids) - 1):
        if ids[s] == IM_START and ids[s + 1] == ASSISTANT:
            e = ids.index(IM_END, s + 1)
            lab[s + 3:e + 1] = ids[s + 3:e + 1]
    return lab


def sample_image():
    s = Sample(101)
    s.system()
    s.open(USER); s.text(1); s.vision(0, (1, 6, 8)); s.text(6); s.close()      # user-text(3) = "user" "\n" + 1
    s.assistant(8, ellipsis=False)
    return s


def sample_video():
    s = Sample(102)
    s.system()
    s.open(USER); s.text(5); s.vision(1, (3, 4, 6)); s.text(7); s.close()      # Time=0.0-3.0s, chunk, context
    s.assistant(4, ellipsis=True)
    for n_words in (2, 0, 3):                                                   # 0 = silent second (" ..." only)
        s.open(USER); s.text(5); s.vision(1, (1, 4, 6)); s.close()             # Time=a-bs, 2-frame chunk
        s.assistant(n_words, ellipsis=True)
    return s


def sample_tied():
    s = Sample(103)
    s.system()
    s.open(USER); s.text(4); s.vision(0, (1, 4, 4)); s.text(3); s.close()
    s.assistant(5, ellipsis=False)
    s.open(USER); s.text(5); s.vision(1, (2, 4, 4)); s.text(2); s.close()
    s.assistant(3, ellipsis=True)
    s.open(USER); s.text(5); s.vision(1, (1, 4, 4)); s.close()
    s.assistant(2, ellipsis=True)
    return s


# ---------------------------------------------------------------------------------------------------------------
# canonical get_rope_index (QWEN2VL.md 2.4), numpy, written independently of transformers

def canonical_rope_index(ids, items, merge=2):
    ids = np.asarray(ids)
    n = len(ids)
    cols = []            # list of [3, k] int64 arrays
    st = 0
    maxpos = -1
    for kind, (t, h, w) in items:
        pad = IMAGE_PAD if kind == 0 else VIDEO_PAD
        cand = np.nonzero((ids[st:] == IMAGE_PAD) | (ids[st:] == VIDEO_PAD))[0]
        assert len(cand) > 0
        ed = st + int(cand[0])
        assert ids[ed] == pad, "items are not in order of appearance"
        lt, lh, lw = t, h // merge, w // merge
        text_len = ed - st
        st_idx = maxpos + 1
        txt = np.arange(text_len) + st_idx
        cols.append(np.stack([txt, txt, txt]))
        base = st_idx + text_len
        tt, hh, ww = np.meshgrid(np.arange(lt), np.arange(lh), np.arange(lw), indexing="ij")
        vis = np.stack([tt.ravel(), hh.ravel(), ww.ravel()]) + base
        assert np.all(ids[ed:ed + vis.shape[1]] == pad)
        cols.append(vis)
        maxpos = max(maxpos, int(vis.max()), int(txt.max()) if text_len else -1)
        st = ed + vis.shape[1]
    if st < n:
        txt = np.arange(n - st) + maxpos + 1
        cols.append(np.stack([txt, txt, txt]))
        maxpos = int(txt.max())
    pos = np.concatenate(cols, 1)
    assert pos.shape == (3, n)
    return pos, maxpos + 1 - n


def hf_rope_index(model, ids, items):
    img = [g for k, g in items if k == 0]
    vid = [g for k, g in items if k == 1]
    pos, delta = model.get_rope_index(
        torch.tensor([ids], dtype=torch.long),
        torch.tensor(img, dtype=torch.long) if img else None,
        torch.tensor(vid, dtype=torch.long) if vid else None,
        None)
    return pos[:, 0].numpy(), int(delta.reshape(-1)[0])


def check_rope_rule_extra(model, log):
    """Extra layouts, not stored: the canonical rule and HF 4.50 must agree on all of them."""
    g = torch.Generator().manual_seed(7)

    def txt(n):
        return [TEXT_POOL[i] for i in torch.randint(len(TEXT_POOL), (n,), generator=g).tolist()]

    def vis(kind, grid):
        t, h, w = grid
        return [VISION_START] + [IMAGE_PAD if kind == 0 else VIDEO_PAD] * (t * h * w // 4) + [VISION_END]

    layouts = []
    # worked example of QWEN2VL.md 2.4
    ids = [IM_START, USER, NL] + vis(0, (1, 4, 6)) + txt(3)
    layouts.append(("worked_example", ids, [(0, (1, 4, 6))]))
    # video with grid_t > max(h, w)/2 (where the v5.3 rewrite diverges), then an image, then a video at the very end
    items = [(1, (4, 4, 4)), (0, (1, 6, 4)), (1, (2, 4, 6))]
    ids = txt(3) + vis(*items[0]) + txt(2) + vis(*items[1]) + txt(4) + [VISION_START] + [VIDEO_PAD] * 12
    layouts.append(("tall_video_image_tail", ids, items))
    # two images back to back, no text between, then a 3-frame-group video
    items = [(0, (1, 4, 4)), (0, (1, 2, 8)), (1, (3, 2, 2))]
    ids = txt(1) + vis(*items[0]) + vis(*items[1]) + vis(*items[2]) + txt(2)
    layouts.append(("adjacent_items", ids, items))
    for name, ids, items in layouts:
        ref, ref_delta = canonical_rope_index(ids, items)
        hf, hf_delta = hf_rope_index(model, ids, items)
        assert np.array_equal(ref, hf), (name, ref, hf)
        assert ref_delta == hf_delta, (name, ref_delta, hf_delta)
        if name == "worked_example":
            assert list(ref[0, :4]) == [0, 1, 2, 3]
            assert list(ref[0, 4:10]) == [4] * 6
            assert list(ref[1, 4:10]) == [4, 4, 4, 5, 5, 5]
            assert list(ref[2, 4:10]) == [4, 5, 6, 4, 5, 6]
            assert ref[0, 10] == 7
        if name == "tall_video_image_tail":
            # after the (4,4,4) video the text restarts at base + max(lt, lh, lw) = base + 4, not base + 2
            base = 3 + 1
            assert ref[0, 1 + 3 + 16] == base + 4, ref[:, :25]
    log.append(f"  get_rope_index == canonical rule on {len(layouts)} extra layouts "
               f"(incl. grid_t > max(h,w)/2 and the worked example of QWEN2VL.md 2.4)")


# ---------------------------------------------------------------------------------------------------------------
# independent float64 numpy forward (written from the spec formulas)

_erf = np.vectorize(math.erf)


def np_layernorm(x, w, b, eps=1e-6):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def np_rmsnorm(x, w, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def np_softmax(x):
    x = x - x.max(-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(-1, keepdims=True)


def np_rotate(x, cos, sin):
    """NEOX pairs (i, i + d/2). x [..., d], cos/sin broadcastable to [..., d/2]."""
    d2 = x.shape[-1] // 2
    a, b = x[..., :d2], x[..., d2:]
    return np.concatenate([a * cos - b * sin, b * cos + a * sin], -1)


def np_vision(W, vc, X, grids):
    E, H = vc["embed_dim"], vc["num_heads"]
    hd = E // H
    out = {}
    x = X @ W["visual.patch_embed.proj.weight"].reshape(E, -1).T          # conv3d == linear on the row
    out["vit.embed"] = x
    nf = hd // 4                                                           # rotary dim hd/2 -> hd/4 freqs
    inv = 1.0 / 10000.0 ** (2.0 * np.arange(nf) / (hd // 2))
    ang, segs, off = [], [], 0
    for t, h, w in grids:
        for _tt in range(t):
            for by in range(h // 2):
                for bx in range(w // 2):
                    for dy in range(2):
                        for dx in range(2):
                            ang.append(np.concatenate([(2 * by + dy) * inv, (2 * bx + dx) * inv]))
            segs.append((off, off + h * w))                                 # one attention block per group
            off += h * w
    ang = np.array(ang)
    assert ang.shape == (X.shape[0], hd // 2)
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    N = X.shape[0]
    for b in range(vc["depth"]):
        p = f"visual.blocks.{b}."
        n = np_layernorm(x, W[p + "norm1.weight"], W[p + "norm1.bias"])
        qkv = (n @ W[p + "attn.qkv.weight"].T + W[p + "attn.qkv.bias"]).reshape(N, 3, H, hd)
        q, k, v = np_rotate(qkv[:, 0], cos, sin), np_rotate(qkv[:, 1], cos, sin), qkv[:, 2]
        o = np.zeros((N, H, hd))
        for s, e in segs:
            sc = np.einsum("qhd,khd->hqk", q[s:e], k[s:e]) / math.sqrt(hd)
            o[s:e] = np.einsum("hqk,khd->qhd", np_softmax(sc), v[s:e])
        x = x + o.reshape(N, E) @ W[p + "attn.proj.weight"].T + W[p + "attn.proj.bias"]
        n = np_layernorm(x, W[p + "norm2.weight"], W[p + "norm2.bias"])
        f = n @ W[p + "mlp.fc1.weight"].T + W[p + "mlp.fc1.bias"]
        f = f / (1.0 + np.exp(-1.702 * f))                                  # quick_gelu
        x = x + f @ W[p + "mlp.fc2.weight"].T + W[p + "mlp.fc2.bias"]
        out[f"vit.block.{b}"] = x
    y = np_layernorm(x, W["visual.merger.ln_q.weight"], W["visual.merger.ln_q.bias"]).reshape(-1, 4 * E)
    y = y @ W["visual.merger.mlp.0.weight"].T + W["visual.merger.mlp.0.bias"]
    y = 0.5 * y * (1.0 + _erf(y / math.sqrt(2.0)))                          # exact GELU
    out["merger"] = y @ W["visual.merger.mlp.2.weight"].T + W["visual.merger.mlp.2.bias"]
    return out


def np_text(W, cfg, ids, vis_rows, pos, labels):
    ids = np.asarray(ids)
    T = len(ids)
    C, nh, nkv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd, rep, eps = C // nh, nh // nkv, cfg["rms_norm_eps"]
    s0, s1, s2 = cfg["rope_scaling"]["mrope_section"]
    assert 2 * (s0 + s1 + s2) == hd
    out = {}
    x = W["model.embed_tokens.weight"][ids].copy()
    vis = np.nonzero((ids == IMAGE_PAD) | (ids == VIDEO_PAD))[0]
    assert len(vis) == vis_rows.shape[0]
    x[vis] = vis_rows                                                       # appearance order
    out["hidden.0"] = x
    kk = np.arange(hd // 2)
    axis = np.where(kk < s0, 0, np.where(kk < s0 + s1, 1, 2))
    ang = pos[axis, :].T.astype(np.float64) * cfg["rope_theta"] ** (-2.0 * kk / hd)   # [T, hd/2]
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    future = np.triu(np.ones((T, T), dtype=bool), 1)
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        n = np_rmsnorm(x, W[p + "input_layernorm.weight"], eps)
        q = (n @ W[p + "self_attn.q_proj.weight"].T + W[p + "self_attn.q_proj.bias"]).reshape(T, nh, hd)
        k = (n @ W[p + "self_attn.k_proj.weight"].T + W[p + "self_attn.k_proj.bias"]).reshape(T, nkv, hd)
        v = (n @ W[p + "self_attn.v_proj.weight"].T + W[p + "self_attn.v_proj.bias"]).reshape(T, nkv, hd)
        q, k = np_rotate(q, cos, sin), np_rotate(k, cos, sin)
        o = np.zeros((T, nh, hd))
        for h in range(nh):
            j = h // rep                                                    # kv head j serves q heads [j*rep, ..)
            sc = q[:, h] @ k[:, j].T / math.sqrt(hd)
            sc[future] = -np.inf
            o[:, h] = np_softmax(sc) @ v[:, j]
        x = x + o.reshape(T, C) @ W[p + "self_attn.o_proj.weight"].T
        m = np_rmsnorm(x, W[p + "post_attention_layernorm.weight"], eps)
        gte = m @ W[p + "mlp.gate_proj.weight"].T
        x = x + ((gte / (1.0 + np.exp(-gte))) * (m @ W[p + "mlp.up_proj.weight"].T)) @ W[p + "mlp.down_proj.weight"].T
        out[f"hidden.{l + 1}"] = x
    fn = np_rmsnorm(x, W["model.norm.weight"], eps)
    out["final_norm"] = fn
    head = W["lm_head.weight"] if "lm_head.weight" in W else W["model.embed_tokens.weight"]
    logits = fn @ head.T
    out["logits"] = logits
    lab = np.asarray(labels)[1:]
    lg = logits[:-1]
    ok = lab != -100
    lg, lab = lg[ok], lab[ok]
    mx = lg.max(-1, keepdims=True)
    lse = (mx + np.log(np.exp(lg - mx).sum(-1, keepdims=True)))[:, 0]
    out["loss"] = np.array([np.mean(lse - lg[np.arange(len(lab)), lab])])
    return out


# ---------------------------------------------------------------------------------------------------------------
# running a case through HF

def run_case(model, sample, pixels, one_d, want_grads):
    ids = sample.ids
    T = len(ids)
    labels = sample.labels()
    assert labels == livecc_labels(ids), "structural labels != LiveCC rule"
    items = sample.items
    counts = [t * h * w for _, (t, h, w) in items]
    offs = np.concatenate([[0], np.cumsum(counts)]).astype(int)
    assert offs[-1] == pixels.shape[0]
    img_i = [i for i, (k, _) in enumerate(items) if k == 0]
    vid_i = [i for i, (k, _) in enumerate(items) if k == 1]

    kw = dict(input_ids=torch.tensor([ids], dtype=torch.long), labels=torch.tensor([labels], dtype=torch.long),
              use_cache=False, return_dict=True)
    if img_i:
        kw["pixel_values"] = torch.cat([pixels[offs[i]:offs[i + 1]] for i in img_i])
        kw["image_grid_thw"] = torch.tensor([items[i][1] for i in img_i], dtype=torch.long)
    if vid_i:
        kw["pixel_values_videos"] = torch.cat([pixels[offs[i]:offs[i + 1]] for i in vid_i])
        kw["video_grid_thw"] = torch.tensor([items[i][1] for i in vid_i], dtype=torch.long)
    if one_d:
        kw["position_ids"] = torch.arange(T).view(1, 1, T).expand(3, 1, T).contiguous()

    cap = {"embed": [], "blocks": [], "merger": [], "pos": [], "layer_in0": [], "layers": [], "norm": []}
    hooks = []
    vis = model.visual
    hooks.append(vis.patch_embed.register_forward_hook(lambda m, a, o: cap["embed"].append(o.detach().clone())))
    for b, blk in enumerate(vis.blocks):
        hooks.append(blk.register_forward_hook(
            lambda m, a, o, b=b: cap["blocks"].append((b, o.detach().clone()))))
    hooks.append(vis.merger.register_forward_hook(lambda m, a, o: cap["merger"].append(o.detach().clone())))
    hooks.append(model.model.rotary_emb.register_forward_pre_hook(
        lambda m, a: cap["pos"].append(a[1].detach().clone())))
    hooks.append(model.model.layers[0].register_forward_pre_hook(
        lambda m, a, kw_: cap["layer_in0"].append((a[0] if a else kw_["hidden_states"]).detach().clone()),
        with_kwargs=True))
    for l, layer in enumerate(model.model.layers):
        hooks.append(layer.register_forward_hook(lambda m, a, o, l=l: cap["layers"].append((l, o[0].detach().clone()))))
    hooks.append(model.model.norm.register_forward_hook(lambda m, a, o: cap["norm"].append(o.detach().clone())))

    model.zero_grad(set_to_none=True)
    model.rope_deltas = None
    try:
        out = model(**kw)
        if want_grads:
            out.loss.backward()
    finally:
        for h in hooks:
            h.remove()

    # --- position ids actually used
    assert len(cap["pos"]) == 1
    pos_used = cap["pos"][0]
    assert pos_used.shape == (3, 1, T)
    pos_used = pos_used[:, 0].numpy().astype(np.int64)
    ref_pos, ref_delta = canonical_rope_index(ids, items)
    hf_pos, hf_delta = hf_rope_index(model, ids, items)
    assert np.array_equal(ref_pos, hf_pos) and ref_delta == hf_delta, "HF get_rope_index != canonical rule"
    if one_d:
        assert np.array_equal(pos_used, np.tile(np.arange(T), (3, 1)))
        rope_delta = 0
    else:
        assert np.array_equal(pos_used, ref_pos), "HF forward did not use get_rope_index positions"
        assert int(model.rope_deltas.reshape(-1)[0]) == ref_delta
        rope_delta = ref_delta

    # --- merger output in appearance order (HF: one ViT call for images, then one for videos)
    calls = []
    if img_i:
        calls.append(img_i)
    if vid_i:
        calls.append(vid_i)
    assert len(cap["merger"]) == len(calls) == len(cap["embed"])
    per_item = {}
    for call_items, mo in zip(calls, cap["merger"]):
        o = 0
        for i in call_items:
            n = counts[i] // 4
            per_item[i] = mo[o:o + n]
            o += n
        assert o == mo.shape[0]
    merger = torch.cat([per_item[i] for i in range(len(items))]) if items else None

    t = {}
    t["input_ids"] = torch.tensor(ids, dtype=torch.int32)
    t["labels"] = torch.tensor(labels, dtype=torch.int32)
    t["pixel_values"] = pixels.clone()
    t["grid_thw"] = torch.tensor([g for _, g in items], dtype=torch.int32).reshape(-1, 3)
    t["item_kind"] = torch.tensor([k for k, _ in items], dtype=torch.int32)
    t["position_ids"] = torch.from_numpy(pos_used.astype(np.int32))
    t["rope_delta"] = torch.tensor([rope_delta], dtype=torch.int32)
    if len(calls) == 1:
        t["vit.embed"] = cap["embed"][0]
        for b, o in cap["blocks"]:
            t[f"vit.block.{b}"] = o
    t["merger"] = merger
    # hidden.0: embedding rows with the merger rows scattered in (appearance order) -- check it is exactly that
    assert len(cap["layer_in0"]) == 1
    h0 = cap["layer_in0"][0][0]
    manual = model.model.embed_tokens.weight.detach()[torch.tensor(ids)].clone()
    vpos = [i for i, x in enumerate(ids) if x in (IMAGE_PAD, VIDEO_PAD)]
    manual[vpos] = merger
    assert torch.equal(h0, manual), "inputs_embeds are not the appearance-order scatter of the merger rows"
    t["hidden.0"] = h0
    assert [l for l, _ in cap["layers"]] == list(range(len(model.model.layers)))
    for l, o in cap["layers"]:
        t[f"hidden.{l + 1}"] = o[0]
    assert len(cap["norm"]) == 1
    t["final_norm"] = cap["norm"][0][0]
    t["logits"] = out.logits.detach()[0].float().clone()
    t["loss"] = out.loss.detach().reshape(1).float().clone()
    if want_grads:
        for name, p in model.named_parameters():
            assert p.grad is not None, name
            t["grad." + name] = p.grad.detach().clone()
    return {k: v.contiguous() for k, v in t.items()}


def check_against_numpy(model, cfg, t, log, tag):
    W = {k: v.detach().double().numpy() for k, v in model.state_dict().items()}
    ids = t["input_ids"].numpy()
    grids = [tuple(g) for g in t["grid_thw"].tolist()]
    X = t["pixel_values"].double().numpy()
    # one numpy ViT call per item (each item's attention blocks are independent, so this equals HF's batching)
    offs = np.concatenate([[0], np.cumsum([a * b * c for a, b, c in grids])]).astype(int)
    per = [np_vision(W, cfg["vision_config"], X[offs[i]:offs[i + 1]], [grids[i]]) for i in range(len(grids))]
    ref = {"merger": np.concatenate([p["merger"] for p in per])}
    if "vit.embed" in t:
        for k in ["vit.embed"] + [f"vit.block.{b}" for b in range(cfg["vision_config"]["depth"])]:
            ref[k] = np.concatenate([p[k] for p in per])
    # feed the *numpy* merger rows into the numpy decoder: an end-to-end independent path
    ref.update(np_text(W, cfg, ids, ref["merger"], t["position_ids"].numpy().astype(np.int64),
                       t["labels"].numpy()))
    worst = 0.0
    for k, r in ref.items():
        if k not in t:
            continue
        hf = t[k].double().numpy()
        assert hf.shape == r.shape, (k, hf.shape, r.shape)
        err = float(np.abs(hf - r).max() / max(np.abs(r).max(), 1e-30))
        worst = max(worst, err)
        assert err < 1e-4, f"{tag}: {k} differs from the numpy reference: rel err {err:.3e}"
    log.append(f"  numpy float64 reference matches {tag}: worst max|diff|/max|ref| = {worst:.2e} "
               f"over {sorted(k for k in ref if k in t)}")


def check_vision_facts(model, log):
    """Order facts the C implementation relies on, checked directly on the HF modules."""
    vis = model.visual
    E = vis.patch_embed.embed_dim
    g = torch.Generator().manual_seed(11)
    X = torch.randn(10, 1176, generator=g)
    with torch.no_grad():
        a = vis.patch_embed(X)
        b = X @ vis.patch_embed.proj.weight.reshape(E, 1176).T
    assert torch.allclose(a, b, rtol=1e-5, atol=1e-5), "conv3d != linear with weight.reshape(E, 1176)"
    grid = torch.tensor([[2, 4, 6], [1, 2, 8]])
    rot = vis.rot_pos_emb(grid).double().numpy()
    hd = E // vis.blocks[0].attn.num_heads
    inv = 1.0 / 10000.0 ** (2.0 * np.arange(hd // 4) / (hd // 2))
    ref = []
    for t, h, w in grid.tolist():
        for _ in range(t):
            for r in range(h * w):          # closed form of QWEN2VL.md 1.2/1.4: r = ((by*(w/2)+bx)*2+dy)*2+dx
                dx, dy, bx, by = r % 2, (r // 2) % 2, (r // 4) % (w // 2), r // (4 * (w // 2))
                ref.append(np.concatenate([(2 * by + dy) * inv, (2 * bx + dx) * inv]))
    assert np.allclose(rot, np.array(ref), rtol=1e-6, atol=1e-5), "vision rope row order"
    log.append(f"  vision ({model.config.hidden_size=}): conv3d == X @ W.reshape(E,1176)^T; rot_pos_emb row r -> (h,w) = (2by+dy, 2bx+dx), "
               "repeated per temporal group")


# ---------------------------------------------------------------------------------------------------------------

_ST_DTYPE = {torch.float32: "F32", torch.int32: "I32"}


def write_safetensors(path, tensors, metadata):
    """Byte-reproducible safetensors writer. (safetensors' own writer serializes __metadata__ from a Rust
    HashMap, so the key order -- and the file bytes -- change from run to run when there is more than one key.)
    Header: "__metadata__" first, then tensors sorted by name with consecutive data offsets; padded with spaces
    to a multiple of 8 like the reference writer."""
    assert sys.byteorder == "little"
    header = {"__metadata__": {k: str(v) for k, v in metadata.items()}}
    blobs, off = [], 0
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        b = t.numpy().tobytes()
        header[name] = {"dtype": _ST_DTYPE[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.chmod(path, 0o644)


def save_case(path, tensors, model_name, case_name, extra_meta):
    meta = {"format": "pt", "model": model_name, "transformers": HF_VERSION, "torch": TORCH_VERSION,
            "case": case_name, **extra_meta}
    write_safetensors(path, tensors, meta)
    with safe_open(str(path), "pt") as f:
        assert f.metadata() == meta
    back = load_file(str(path))
    assert set(back) == set(tensors)
    for k, v in tensors.items():
        assert torch.equal(back[k], v), k


def fmt_size(n):
    return f"{n / 1024 / 1024:.2f} MiB" if n >= 1024 * 1024 else f"{n / 1024:.1f} KiB"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(REPO / "tests" / "fixtures"), help="fixture directory")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    if (HF_VERSION, TORCH_VERSION) != ("4.50.0", "2.6.0"):
        print(f"WARNING: fixtures are pinned to transformers 4.50.0 / torch 2.6.0, running {HF_VERSION} / "
              f"{TORCH_VERSION}", file=sys.stderr)

    log = []
    written = []
    models = {}
    cfgs = {"tiny_b": tiny_b_config(), "tiny_t": tiny_t_config()}
    for name, seed in (("tiny_b", 1), ("tiny_t", 2)):
        m = build_model(cfgs[name], seed)
        sd = save_model(m, out / name, log)
        models[name] = m
        n_params = sum(p.numel() for p in m.parameters())
        log.append(f"  {name}: {len(sd)} tensors, {n_params} parameters, names: "
                   f"{sorted({k.split('.')[0] for k in sd})}, tied={m.config.tie_word_embeddings}")
        written += [out / name / "config.json", out / name / "model.safetensors"]
        # the saved config must be what the C side expects
        saved = json.loads((out / name / "config.json").read_text())
        assert saved["rope_scaling"]["mrope_section"] == [4, 6, 6]
        assert saved["image_token_id"] == IMAGE_PAD and saved["video_token_id"] == VIDEO_PAD
        assert saved["vision_config"]["embed_dim"] == cfgs[name]["vision_config"]["embed_dim"]

    check_vision_facts(models["tiny_b"], log)
    check_vision_facts(models["tiny_t"], log)
    check_rope_rule_extra(models["tiny_b"], log)

    cases = [
        ("case_image", "tiny_b", sample_image, False, True),
        ("case_video", "tiny_b", sample_video, False, True),
        ("case_tied", "tiny_t", sample_tied, False, True),
        ("case_1d", "tiny_b", sample_video, True, False),
    ]
    summary = []
    stored = {}
    for case, mname, make, one_d, grads in cases:
        s = make()
        pixels = s.pixels()
        t = run_case(models[mname], s, pixels, one_d, grads)
        extra_meta = {}
        if one_d:
            # case_1d (size budget): positions, decoder activations, logits, loss and the small input tensors;
            # pixel_values are those of case_video (asserted identical here), no vit.*/merger/final_norm/grad.*
            ref = stored["case_video"]
            for k in ("input_ids", "labels", "pixel_values", "grid_thw", "item_kind", "hidden.0"):
                assert torch.equal(t[k], ref[k]), k
            assert not torch.equal(t["position_ids"], ref["position_ids"])
            check_against_numpy(models[mname], cfgs[mname], t, log, case)
            keep = ("input_ids", "labels", "grid_thw", "item_kind", "position_ids", "rope_delta", "logits", "loss")
            t = {k: v for k, v in t.items() if k in keep or k.startswith("hidden.")}
            extra_meta["pixel_values_from"] = "case_video.safetensors"
        else:
            check_against_numpy(models[mname], cfgs[mname], t, log, case)
        path = out / f"{case}.safetensors"
        save_case(path, t, mname, case, extra_meta)
        stored[case] = t
        written.append(path)
        n_lab = int((t["labels"][1:] != -100).sum())
        summary.append(f"  {case:10s} model={mname} T={len(t['input_ids'])} items={t['grid_thw'].tolist()} "
                       f"kinds={t['item_kind'].tolist()} rope_delta={int(t['rope_delta'][0])} "
                       f"loss={float(t['loss'][0]):.6f} (over {n_lab} targets) "
                       f"max|logit|={float(t['logits'].abs().max()):.4f} tensors={len(t)}")

    # the saved folders must reproduce the fixtures bit for bit
    for case, mname, make, one_d, grads in cases:
        m2 = Qwen2VLForConditionalGeneration.from_pretrained(str(out / mname), attn_implementation="eager",
                                                             torch_dtype=torch.float32)
        m2.train()
        if mname == "tiny_t":
            assert m2.lm_head.weight is m2.model.embed_tokens.weight
        s = make()
        t2 = run_case(m2, s, s.pixels(), one_d, False)
        assert torch.equal(t2["logits"], stored[case]["logits"]), f"reloaded {mname} does not reproduce {case}"
        assert torch.equal(t2["loss"], stored[case]["loss"])
    log.append("  reloaded tiny_b / tiny_t folders reproduce every case's logits and loss bit for bit")

    print("checks:")
    print("\n".join(log))
    print("cases:")
    print("\n".join(summary))
    print("wrote:")
    for p in written:
        print(f"  {p.relative_to(REPO) if p.is_relative_to(REPO) else p}  {fmt_size(p.stat().st_size)}")
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"total size of {out.relative_to(REPO) if out.is_relative_to(REPO) else out}: {fmt_size(total)} "
          f"({total} bytes; budget {fmt_size(FIXTURE_BUDGET)} = {FIXTURE_BUDGET} bytes)")
    assert total < FIXTURE_BUDGET, "fixtures exceed the size budget"


if __name__ == "__main__":
    main()
