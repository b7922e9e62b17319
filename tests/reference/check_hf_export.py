#!/usr/bin/env python3
"""Loads a livecc-convert HF export of the TINY-B model with transformers and checks that it is a working
Qwen2-VL folder:
  - Qwen2VLForConditionalGeneration.from_pretrained: no missing, unexpected or mismatched keys, the dtype of
    config.json;
  - the case_video fixture (a LiveCC streaming sample, 4 video chunks) through the model: logits within
    1e-4 * max|logit| of the fixture's (which livecc's own forward matches to ~1e-6) for an fp32 export, within
    rounding for bf16/fp16 exports (weights rounded, math in fp32);
  - AutoTokenizer (fast) and the slow Qwen2Tokenizer (vocab.json + merges.txt) encode alike; the chat template
    renders the expected prompt; AutoProcessor builds a Qwen2VLProcessor whose image processor gives the
    grids of QWEN2VL.md 1.2 and expands <|image_pad|> accordingly; the generation config loads.

  check_hf_export.py EXPORT_DIR [REFERENCE_DIR]

Without REFERENCE_DIR the export must be of TINY-B (tests/fixtures/tiny_b) and is compared with the fixture's
logits. With it (e.g. the training checkpoint the export came from, which transformers also loads), the
reference logits are that folder's fp32 forward on the same inputs.
"""
import json
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file
from transformers import (AutoProcessor, AutoTokenizer, GenerationConfig, Qwen2Tokenizer,
                          Qwen2VLForConditionalGeneration)

ROOT = Path(__file__).resolve().parents[2]
failures = []


def check(cond, msg):
    print(("ok   " if cond else "FAIL ") + msg)
    if not cond:
        failures.append(msg)


def main():
    out = Path(sys.argv[1])
    cfg = json.loads((out / "config.json").read_text())
    dtype = cfg["torch_dtype"]

    model, info = Qwen2VLForConditionalGeneration.from_pretrained(out, output_loading_info=True, torch_dtype="auto")
    check(all(not info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs")),
          f"from_pretrained loading info: {({k: v for k, v in info.items() if v})}")
    check(str(model.dtype) == f"torch.{dtype}", f"loaded dtype {model.dtype} (config.json torch_dtype {dtype})")
    model = model.float().eval()

    case = load_file(str(ROOT / "tests/fixtures/case_video.safetensors"))
    assert (case["item_kind"] == 1).all()

    def forward(m):
        with torch.no_grad():
            return m(input_ids=torch.from_numpy(case["input_ids"].astype(np.int64))[None],
                     pixel_values_videos=torch.from_numpy(case["pixel_values"]),
                     video_grid_thw=torch.from_numpy(case["grid_thw"].astype(np.int64)),
                     use_cache=False).logits[0].numpy()

    logits = forward(model)
    if len(sys.argv) > 2:
        ref = forward(Qwen2VLForConditionalGeneration.from_pretrained(sys.argv[2], torch_dtype=torch.float32).eval())
        print(f"reference logits: {sys.argv[2]} in transformers (fp32)")
    else:
        ref = case["logits"]
        print("reference logits: tests/fixtures/case_video.safetensors (TINY-B in transformers, fp32)")
    err = float(np.max(np.abs(logits - ref)))
    scale = float(np.max(np.abs(ref)))
    tol = 1e-4 if dtype == "float32" else 3e-2
    check(err <= tol * scale, f"case_video logits [{logits.shape[0]} x {logits.shape[1]}]: max |diff| {err:.3g} = "
                              f"{err / scale:.2e} * max|logit| (bound {tol:g} * max|logit| for {dtype} weights)")

    fast = AutoTokenizer.from_pretrained(out)
    slow = Qwen2Tokenizer.from_pretrained(out)
    text = "<|im_start|>user\nTime=0.0-3.0s<|vision_start|><|video_pad|><|vision_end|> a big red circle now moving left ...<|im_end|>"
    check(type(fast).__name__ == "Qwen2TokenizerFast", f"AutoTokenizer: {type(fast).__name__}")
    check(fast(text)["input_ids"] == slow(text)["input_ids"],
          f"slow (vocab.json + merges.txt) and fast (tokenizer.json) tokenizers agree on {len(fast(text)['input_ids'])} ids")
    check(fast.eos_token == "<|im_end|>" and fast.pad_token == "<|endoftext|>" and fast.bos_token is None,
          f"special tokens: eos {fast.eos_token!r}, pad {fast.pad_token!r}, bos {fast.bos_token!r}")
    msgs = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Time=0.0-3.0s"}]}]
    prompt = fast.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    want = ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
            "<|vision_start|><|video_pad|><|vision_end|>Time=0.0-3.0s<|im_end|>\n<|im_start|>assistant\n")
    check(prompt == want, "chat template renders the Qwen2-VL prompt")

    proc = AutoProcessor.from_pretrained(out)
    ip = proc.image_processor
    check(type(proc).__name__ == "Qwen2VLProcessor" and type(ip).__name__ == "Qwen2VLImageProcessor",
          f"AutoProcessor: {type(proc).__name__} with {type(ip).__name__}")
    check(ip.min_pixels == 3136 and ip.max_pixels == 12845056 and ip.merge_size == 2 and ip.patch_size == 14,
          f"image processor: min_pixels {ip.min_pixels}, max_pixels {ip.max_pixels}, patch {ip.patch_size}, merge {ip.merge_size}")
    from PIL import Image
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (56, 84, 3), dtype=np.uint8))
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "what is it"}]}]
    batch = proc(text=[proc.apply_chat_template(msgs, add_generation_prompt=True)], images=[img], return_tensors="pt")
    n_pad = int((batch["input_ids"] == cfg["image_token_id"]).sum())
    check(batch["image_grid_thw"].tolist() == [[1, 4, 6]] and n_pad == 6 and tuple(batch["pixel_values"].shape) == (24, 1176),
          f"processor: 56x84 image -> grid {batch['image_grid_thw'].tolist()}, {n_pad} <|image_pad|>, pixels "
          f"{tuple(batch['pixel_values'].shape)}")
    with torch.no_grad():
        lg = model(**batch).logits
    check(bool(torch.isfinite(lg).all()), f"processor output runs through the model: logits {tuple(lg.shape)}")

    gen = GenerationConfig.from_pretrained(out)
    check(gen.eos_token_id == [cfg["eos_token_id"], fast.convert_tokens_to_ids("<|endoftext|>")] and gen.top_k == 1,
          f"generation config: eos {gen.eos_token_id}, pad {gen.pad_token_id}, top_k {gen.top_k}")

    print("FAILED:" if failures else "OK: the export loads and runs in transformers", len(failures) if failures else "")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
