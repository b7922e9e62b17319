#!/usr/bin/env python3
"""Reads a livecc-convert GGUF pair with llama.cpp's own `gguf` package (GGUFReader) and checks it against
what convert_hf_to_gguf.py writes for Qwen2-VL (QWEN2VL.md section 5): every metadata key with its type and
value, every tensor name, ggml shape and type, and every tensor's values against the HF weights it came from.

  check_gguf.py GGUF_DIR HF_DIR DTYPE        (DTYPE: fp32, fp16, bf16 or q8_0; GGUF_DIR holds
                                             model-DTYPE.gguf and mmproj-DTYPE.gguf; HF_DIR the source folder)

Needs: gguf, numpy, safetensors (pip install gguf).
"""
import json
import sys
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as Q
from gguf import GGUFReader, GGUFValueType as T
from gguf.quants import dequantize
from safetensors.numpy import load_file

FTYPE = {"fp32": 0, "fp16": 1, "q8_0": 7, "bf16": 32}
QTYPE = {"fp32": Q.F32, "fp16": Q.F16, "q8_0": Q.Q8_0, "bf16": Q.BF16}
CHAT_TEMPLATE = (Path(__file__).resolve().parents[1] / "fixtures/convert/chat_template.jinja").read_text()
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL:", msg)


def field(r, key):
    f = r.fields.get(key)
    if f is None:
        return None, None
    return f.types, f.contents()


def expect(r, key, types, value, approx=False):
    got_t, got = field(r, key)
    check(got_t is not None, f"{key}: missing")
    if got_t is None:
        return
    check(got_t == types, f"{key}: types {got_t} != {types}")
    if approx:
        ok = np.allclose(np.asarray(got, np.float64), np.asarray(value, np.float64), rtol=1e-6, atol=0)
    else:
        ok = got == value
    check(ok, f"{key}: {str(got)[:80]!r} != {str(value)[:80]!r}")


def hf_weights(hf_dir):
    w = {}
    for f in sorted(Path(hf_dir).glob("model*.safetensors")):   # not a checkpoint's optim-* parts
        w.update(load_file(str(f)))
    return {k: v.astype(np.float32) for k, v in w.items()}


def expected_tensors(cfg, W, dtype):
    """name -> (numpy array from the HF weights, ggml type) as convert_hf_to_gguf.py would write it."""
    q = QTYPE[dtype]

    def qtype(name, a):
        if a.ndim == 1 or name.endswith("_norm.weight"):
            return Q.F32
        if name.startswith("v.patch_embd."):
            return Q.F16 if q == Q.F16 else Q.F32
        if q == Q.Q8_0 and a.shape[-1] % 32:
            return Q.F16
        return q

    text, vis = {}, {}
    text["token_embd.weight"] = W["model.embed_tokens.weight"]
    text["output_norm.weight"] = W["model.norm.weight"]
    if not cfg["tie_word_embeddings"]:
        text["output.weight"] = W["lm_head.weight"]
    dec = {"input_layernorm.weight": "attn_norm.weight", "self_attn.o_proj.weight": "attn_output.weight",
           "post_attention_layernorm.weight": "ffn_norm.weight", "mlp.gate_proj.weight": "ffn_gate.weight",
           "mlp.up_proj.weight": "ffn_up.weight", "mlp.down_proj.weight": "ffn_down.weight"}
    for x in "qkv":
        dec[f"self_attn.{x}_proj.weight"] = f"attn_{x}.weight"
        dec[f"self_attn.{x}_proj.bias"] = f"attn_{x}.bias"
    for l in range(cfg["num_hidden_layers"]):
        for a, b in dec.items():
            text[f"blk.{l}.{b}"] = W[f"model.layers.{l}.{a}"]
    pe = W["visual.patch_embed.proj.weight"]
    vis["v.patch_embd.weight"] = pe[:, :, 0]
    vis["v.patch_embd.weight.1"] = pe[:, :, 1]
    blk = {"norm1": "ln1", "norm2": "ln2", "attn.proj": "attn_out", "mlp.fc1": "ffn_up", "mlp.fc2": "ffn_down"}
    for b in range(cfg["vision_config"]["depth"]):
        for a, g in blk.items():
            for s in ("weight", "bias"):
                vis[f"v.blk.{b}.{g}.{s}"] = W[f"visual.blocks.{b}.{a}.{s}"]
        for s in ("weight", "bias"):
            qkv = W[f"visual.blocks.{b}.attn.qkv.{s}"]
            for i, x in enumerate("qkv"):
                vis[f"v.blk.{b}.attn_{x}.{s}"] = np.split(qkv, 3, axis=0)[i]
    for a, g in (("ln_q", "v.post_ln"), ("mlp.0", "mm.0"), ("mlp.2", "mm.2")):
        for s in ("weight", "bias"):
            vis[f"{g}.{s}"] = W[f"visual.merger.{a}.{s}"]
    return ({k: (v, qtype(k, v)) for k, v in text.items()}, {k: (v, qtype(k, v)) for k, v in vis.items()})


def check_tensors(r, want, path):
    got = {t.name: t for t in r.tensors}
    check(set(got) == set(want), f"{path}: tensor names differ: missing {sorted(set(want) - set(got))[:5]}, "
                                 f"extra {sorted(set(got) - set(want))[:5]}")
    worst = {}
    for name, (a, qt) in want.items():
        t = got.get(name)
        if t is None:
            continue
        check(list(t.shape) == list(a.shape[::-1]), f"{name}: ggml shape {list(t.shape)} != {list(a.shape[::-1])}")
        check(t.tensor_type == qt, f"{name}: type {t.tensor_type.name} != {qt.name}")
        vals = dequantize(t.data, t.tensor_type).reshape(a.shape).astype(np.float32)
        err = float(np.max(np.abs(vals - a)) / max(np.max(np.abs(a)), 1e-30))
        tol = {Q.F32: 0.0, Q.F16: 2 ** -11, Q.BF16: 2 ** -8, Q.Q8_0: 1 / 127}[t.tensor_type]
        check(err <= tol, f"{name}: max relative error {err:.3g} > {tol:.3g} ({t.tensor_type.name})")
        worst[t.tensor_type.name] = max(worst.get(t.tensor_type.name, 0.0), err)
    print(f"  {len(got)} tensors; worst |error| / max|value| per type: "
          + ", ".join(f"{k} {v:.3g}" for k, v in sorted(worst.items())))


def main():
    gguf_dir, hf_dir, dtype = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    cfg = json.loads((hf_dir / "config.json").read_text())
    tok = json.loads((Path(__file__).resolve().parents[2] / "configs/tokenizer/tiny/tokenizer.json").read_text()) \
        if not (hf_dir / "tokenizer.json").exists() else json.loads((hf_dir / "tokenizer.json").read_text())
    W = hf_weights(hf_dir)
    want_text, want_vis = expected_tensors(cfg, W, dtype)

    path = gguf_dir / f"model-{dtype}.gguf"
    r = GGUFReader(path)
    print(f"{path}: GGUF v{r.fields['GGUF.version'].contents()}, alignment {r.alignment}")
    U32, F32, S, B = [T.UINT32], [T.FLOAT32], [T.STRING], [T.BOOL]
    expect(r, "general.architecture", S, "qwen2vl")
    expect(r, "general.type", S, "model")
    expect(r, "general.file_type", U32, FTYPE[dtype])
    expect(r, "general.quantization_version", U32, 2)
    expect(r, "qwen2vl.block_count", U32, cfg["num_hidden_layers"])
    expect(r, "qwen2vl.context_length", U32, cfg["max_position_embeddings"])
    expect(r, "qwen2vl.embedding_length", U32, cfg["hidden_size"])
    expect(r, "qwen2vl.feed_forward_length", U32, cfg["intermediate_size"])
    expect(r, "qwen2vl.attention.head_count", U32, cfg["num_attention_heads"])
    expect(r, "qwen2vl.attention.head_count_kv", U32, cfg["num_key_value_heads"])
    expect(r, "qwen2vl.rope.dimension_sections", [T.ARRAY, T.INT32], cfg["rope_scaling"]["mrope_section"] + [0])
    expect(r, "qwen2vl.rope.freq_base", F32, cfg["rope_theta"], approx=True)
    expect(r, "qwen2vl.attention.layer_norm_rms_epsilon", F32, cfg["rms_norm_eps"], approx=True)
    expect(r, "tokenizer.ggml.model", S, "gpt2")
    expect(r, "tokenizer.ggml.pre", S, "qwen2")
    # the vocabulary as convert_hf_to_gguf.py's get_vocab_base builds it
    V = cfg["vocab_size"]
    rev = {i: t for t, i in tok["model"]["vocab"].items()}
    added = {a["id"]: a for a in tok["added_tokens"]}
    tokens, types = [], []
    for i in range(V):
        if i in added:
            t = added[i]["content"]
            tokens.append(t)
            types.append(3 if added[i]["special"] or (t.startswith("<|") and t.endswith("|>")) else 4)
        elif i in rev:
            tokens.append(rev[i])
            types.append(1)
        else:
            tokens.append(f"[PAD{i}]")
            types.append(5)
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]]
    expect(r, "tokenizer.ggml.tokens", [T.ARRAY, T.STRING], tokens)
    expect(r, "tokenizer.ggml.token_type", [T.ARRAY, T.INT32], types)
    expect(r, "tokenizer.ggml.merges", [T.ARRAY, T.STRING], merges)
    ids = {t: i for i, t in enumerate(tokens)}
    expect(r, "tokenizer.ggml.bos_token_id", U32, cfg["bos_token_id"])
    expect(r, "tokenizer.ggml.eos_token_id", U32, cfg["eos_token_id"])
    expect(r, "tokenizer.ggml.padding_token_id", U32, ids["<|endoftext|>"])
    expect(r, "tokenizer.ggml.add_bos_token", B, False)
    expect(r, "tokenizer.chat_template", S, CHAT_TEMPLATE)
    print(f"  {len(r.fields) - 3} metadata keys, {V} tokens ({types.count(5)} [PAD] fillers, {types.count(3)} control), "
          f"{len(merges)} merges")
    check_tensors(r, want_text, path)

    path = gguf_dir / f"mmproj-{dtype}.gguf"
    r = GGUFReader(path)
    vc = cfg["vision_config"]
    print(f"{path}: GGUF v{r.fields['GGUF.version'].contents()}, alignment {r.alignment}")
    expect(r, "general.architecture", S, "clip")
    expect(r, "general.type", S, "mmproj")
    expect(r, "general.file_type", U32, FTYPE[dtype])
    expect(r, "clip.has_vision_encoder", B, True)
    expect(r, "clip.projector_type", S, "qwen2vl_merger")
    expect(r, "clip.vision.projection_dim", U32, cfg["hidden_size"])
    expect(r, "clip.vision.image_size", U32, 560)
    expect(r, "clip.vision.patch_size", U32, vc["patch_size"])
    expect(r, "clip.vision.embedding_length", U32, vc["embed_dim"])
    expect(r, "clip.vision.feed_forward_length", U32, vc["hidden_size"])   # the converter's quirk (QWEN2VL.md 5.2)
    expect(r, "clip.vision.block_count", U32, vc["depth"])
    expect(r, "clip.vision.attention.head_count", U32, vc["num_heads"])
    expect(r, "clip.vision.attention.layer_norm_epsilon", F32, cfg["rms_norm_eps"], approx=True)
    expect(r, "clip.vision.image_mean", [T.ARRAY, T.FLOAT32], [0.48145466, 0.4578275, 0.40821073], approx=True)
    expect(r, "clip.vision.image_std", [T.ARRAY, T.FLOAT32], [0.26862954, 0.26130258, 0.27577711], approx=True)
    print(f"  {len(r.fields) - 3} metadata keys")
    check_tensors(r, want_vis, path)

    print("FAILED:" if failures else "OK: every key, tensor name, shape, type and value as expected",
          len(failures) if failures else "")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
