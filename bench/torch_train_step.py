#!/usr/bin/env python3
"""PyTorch baseline of the livecc.c training-step benchmark.

Runs full training steps of a Hugging Face Qwen2VLForConditionalGeneration (forward with labels, backward,
torch.optim.AdamW step, zero_grad) on the samples of a batch file and prints one machine-readable line on stdout:

    torch_step_ms=<median ms> tokens_per_s=<...> threads=<n> torch=<ver> transformers=<ver>

(everything else goes to stderr). Environment: tests/reference/requirements.txt.

    .venv-ref/bin/python bench/torch_train_step.py --model tests/fixtures/tiny_b \\
        --batch tests/fixtures/case_video.safetensors --threads 4 --steps 20 --warmup 3 --freeze-visual

--batch is a safetensors file in the format of tests/fixtures/case_*.safetensors: input_ids I32 [T], labels I32 [T],
pixel_values F32 [n_patches, 1176] (all vision items' rows in order of appearance), grid_thw I32 [n_items, 3],
item_kind I32 [n_items] (0 image, 1 video). It may hold several samples concatenated along T; then it also has
sample_start I32 [n_samples + 1] (token offsets). Vision items are assigned to samples in order, by their pad tokens.
Each sample runs separately at batch size 1 (as LiveCC: no padding, no packing); the per-sample mean losses are
summed, gradients accumulate over the samples, and one optimizer step follows. M-RoPE positions come from HF's
get_rope_index (position_ids=None).
"""

import argparse
import statistics
import sys
import time

import torch
import transformers
from safetensors.torch import load_file
from transformers import Qwen2VLForConditionalGeneration

TRANSFORMERS_MAJOR = int(transformers.__version__.split(".")[0])  # 4.50 (the fixtures' version) and 5.x both run


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def split_samples(batch, image_token_id, video_token_id):
    """-> list of dicts with input_ids/labels [1, T_i] (int64) and the HF vision kwargs of that sample."""
    for k in ("input_ids", "labels"):
        if k not in batch:
            sys.exit(f"--batch lacks {k}")
    ids = batch["input_ids"].long().reshape(-1)
    labels = batch["labels"].long().reshape(-1)
    T = ids.numel()
    starts = batch["sample_start"].long().tolist() if "sample_start" in batch else [0, T]
    if starts[0] != 0 or starts[-1] != T or any(b <= a for a, b in zip(starts, starts[1:])):
        sys.exit(f"bad sample_start {starts} for T={T}")
    grid = batch.get("grid_thw", torch.zeros(0, 3, dtype=torch.int32)).long().reshape(-1, 3)
    kind = batch.get("item_kind", torch.zeros(0, dtype=torch.int32)).long().reshape(-1)
    pix = batch.get("pixel_values")
    if grid.shape[0] != kind.shape[0]:
        sys.exit("grid_thw and item_kind disagree")
    n_rows = grid.prod(-1)
    row_off = torch.cat([torch.zeros(1, dtype=torch.long), n_rows.cumsum(0)])
    if grid.shape[0] and (pix is None or pix.shape[0] != int(row_off[-1])):
        sys.exit(f"pixel_values has {None if pix is None else pix.shape[0]} rows, grid_thw needs {int(row_off[-1])}")

    samples, item = [], 0
    for a, b in zip(starts, starts[1:]):
        sid = ids[a:b]
        pads = sid[(sid == image_token_id) | (sid == video_token_id)].tolist()
        img, vid, p = [], [], 0
        while p < len(pads):
            if item >= grid.shape[0]:
                sys.exit("more vision pad tokens than grid_thw items")
            k = int(kind[item])
            n_tok = int(n_rows[item]) // 4
            want = image_token_id if k == 0 else video_token_id
            if pads[p:p + n_tok] != [want] * n_tok:
                sys.exit(f"item {item} (kind {k}, {n_tok} tokens) does not match the pad tokens of its sample")
            (img if k == 0 else vid).append(item)
            p += n_tok
            item += 1
        s = {"input_ids": sid.view(1, -1), "labels": labels[a:b].view(1, -1)}
        if TRANSFORMERS_MAJOR >= 5:  # 5.x wants the modality of each token for M-RoPE: text 0, image 1, video 2
            s["mm_token_type_ids"] = ((sid == image_token_id).int() + 2 * (sid == video_token_id).int()).view(1, -1)
        for key_pix, key_grid, items in (("pixel_values", "image_grid_thw", img),
                                         ("pixel_values_videos", "video_grid_thw", vid)):
            if items:
                s[key_pix] = torch.cat([pix[row_off[i]:row_off[i + 1]] for i in items]).float()
                s[key_grid] = grid[items]
        samples.append(s)
    if item != grid.shape[0]:
        sys.exit(f"{grid.shape[0] - item} grid_thw items are not referenced by any pad token")
    return samples


def main():
    ap = argparse.ArgumentParser(description="PyTorch baseline of the livecc.c training-step benchmark")
    ap.add_argument("--model", required=True, help="HF model folder (config.json + model.safetensors)")
    ap.add_argument("--batch", required=True, help="safetensors batch file (case-file format)")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    ap.add_argument("--steps", type=int, default=10, help="timed steps")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps before the timed ones")
    ap.add_argument("--freeze-visual", action="store_true", help="model.visual.requires_grad_(False), as LiveCC")
    ap.add_argument("--attn", choices=("eager", "sdpa"), default="eager", help="attn_implementation (text+vision)")
    ap.add_argument("--lr", type=float, default=2e-5, help="AdamW lr (LiveCC pre-training: 2e-5)")
    ap.add_argument("--device", default="cpu", help="torch device (default cpu)")
    ap.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32", help="model/compute dtype")
    ap.add_argument("--random-init", action="store_true", help="build the model from --model's config.json alone")
    ap.add_argument("--gradient-checkpointing", action="store_true", help="recompute each decoder layer (as LiveCC)")
    args = ap.parse_args()
    if args.steps < 1 or args.warmup < 0 or args.threads < 1:
        sys.exit("need --steps >= 1, --warmup >= 0, --threads >= 1")

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dev = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    dtype_kw = "dtype" if TRANSFORMERS_MAJOR >= 5 else "torch_dtype"  # renamed in 5.0
    if args.random_init:
        config = transformers.AutoConfig.from_pretrained(args.model)
        model = Qwen2VLForConditionalGeneration._from_config(config, attn_implementation=args.attn,
                                                             **{dtype_kw: dtype}).to(dev)
    else:
        model = Qwen2VLForConditionalGeneration.from_pretrained(args.model, attn_implementation=args.attn,
                                                                **{dtype_kw: dtype}).to(dev)
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    model.config.use_cache = False
    if args.freeze_visual:  # transformers >= 4.52 moved the vision tower to model.model.visual
        visual = model.visual if hasattr(model, "visual") else model.model.visual
        visual.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    # HF Trainer "adamw_torch" defaults as used by LiveCC (LIVECC.md 5.1): betas (0.9, 0.999), eps 1e-8, wd 0
    opt = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)

    batch = load_file(args.batch)
    samples = split_samples(batch, model.config.image_token_id, model.config.video_token_id)
    for s in samples:
        for k, v in s.items():
            s[k] = v.to(dev, dtype=dtype) if v.is_floating_point() else v.to(dev)
    n_tokens = sum(s["input_ids"].numel() for s in samples)
    log(f"model={args.model} params={sum(p.numel() for p in model.parameters())} "
        f"trainable={sum(p.numel() for p in params)} samples={len(samples)} tokens={n_tokens} "
        f"attn={args.attn} device={dev} dtype={args.dtype} freeze_visual={args.freeze_visual}")

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    times = []
    for step in range(args.warmup + args.steps):
        sync()
        t0 = time.perf_counter()
        total = 0.0
        for s in samples:
            out = model(**s, use_cache=False, return_dict=True)
            out.loss.backward()
            total += out.loss.detach()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync()
        dt = time.perf_counter() - t0
        if step >= args.warmup:
            times.append(dt)
        log(f"step {step}{' (warmup)' if step < args.warmup else ''}: loss_sum={float(total):.6f} "
            f"{dt * 1e3:.2f} ms")

    med = statistics.median(times)
    peak = torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else 0.0
    print(f"torch_step_ms={med * 1e3:.3f} tokens_per_s={n_tokens / med:.1f} peak_alloc_gib={peak:.2f} threads={args.threads} "
          f"torch={torch.__version__.split('+')[0]} transformers={transformers.__version__}", flush=True)


if __name__ == "__main__":
    main()
