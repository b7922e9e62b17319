#!/usr/bin/env python3
"""Reference pixels for the media tests (tests/loader/test_media_hf.c): HF Qwen2-VL patch rows, PIL and
torchvision bicubic resizes.

README
------
CI has no Python: what this script writes is committed under tests/fixtures/image/ (about 0.5 MB). From the
repository root, with the venv of tests/reference/requirements.txt (which pins Pillow 11.1.0 and
torchvision 0.21.0 for this script):

    .venv-ref/bin/python tests/reference/make_image_fixtures.py

Deterministic (seeded numpy, CPU).

What it writes
--------------
tests/fixtures/image/exact.png (56 x 84, already a multiple of 28 on both sides)
tests/fixtures/image/resize.png (61 x 101: HF resizes it to 56 x 112)
tests/fixtures/image/pixels.safetensors
    exact_rows       F32 [24, 1176]   Qwen2VLImageProcessor (slow class; min_pixels 3136, max_pixels 12845056,
                                      as Qwen2-VL-7B-Instruct's preprocessor_config) pixel_values of exact.png
    exact_grid       I64 [1, 3]       its image_grid_thw
    resize_u8        U8  [56, 112, 3] the picture HF's processor feeds to rescale/normalize for resize.png:
                                      transformers.image_transforms.resize(array, (56, 112), BICUBIC), the
                                      call its _preprocess makes (PIL Image.resize underneath)
    resize_grid      I64 [1, 3]       image_grid_thw of resize.png (to check the size rule)
    video2_u8        U8  [2, 56, 84, 3]  two frames
    video2_rows      F32 [24, 1176]   pixel_values_videos of those frames as one video (grid 1 x 4 x 6)
    video4_u8        U8  [4, 56, 56, 3]
    video4_rows      F32 [32, 1176]   pixel_values_videos of 4 frames (grid 2 x 4 x 4: checks the temporal order)
    tv_in            U8  [120, 200, 3]   a picture for the resize checks
    tv_down          U8  [56, 84, 3]  torchvision resize(tv_in as [3,H,W] uint8, [56, 84], BICUBIC, antialias)
    tv_up_in         U8  [40, 50, 3]
    tv_up            U8  [56, 84, 3]  the same for tv_up_in (upscaling)
    pil_down         U8  [56, 84, 3]  PIL Image.resize((84, 56), BICUBIC) of tv_in
"""
import os

import numpy as np
import PIL
import safetensors.numpy
import torch
import torchvision
import transformers
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF
from transformers import Qwen2VLImageProcessor
from transformers.image_transforms import resize as hf_resize
from transformers.image_utils import ChannelDimension, PILImageResampling

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "image")


def natural(h, w, seed):
    """Smooth gradients, a sine, hard-edged rectangles, and mild noise: something like a photo."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack([255 * x / w, 255 * y / h, 128 + 90 * np.sin(x * 0.21 + y * 0.13)], axis=-1)
    for _ in range(4):
        y0, x0 = rng.integers(0, h - 4), rng.integers(0, w - 4)
        img[y0:y0 + rng.integers(3, h // 2), x0:x0 + rng.integers(3, w // 2)] = rng.integers(0, 256, 3)
    img += rng.normal(0, 4, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def main():
    assert PIL.__version__ == "11.1.0", "PIL >= 12 changes the order of the two resize passes for some shapes"
    assert transformers.__version__ == "4.50.0" and torchvision.__version__.startswith("0.21.0")
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    proc = Qwen2VLImageProcessor(min_pixels=3136, max_pixels=12845056)
    t = {}

    exact = natural(56, 84, 1)
    Image.fromarray(exact).save(os.path.join(OUT, "exact.png"))
    r = proc(images=[Image.fromarray(exact)], return_tensors="np")
    t["exact_rows"] = r["pixel_values"].astype(np.float32)
    t["exact_grid"] = r["image_grid_thw"].astype(np.int64)

    big = natural(61, 101, 2)
    Image.fromarray(big).save(os.path.join(OUT, "resize.png"))
    r = proc(images=[Image.fromarray(big)], return_tensors="np")
    t["resize_grid"] = r["image_grid_thw"].astype(np.int64)
    _, gh, gw = t["resize_grid"][0]
    t["resize_u8"] = hf_resize(big, (int(gh) * 14, int(gw) * 14), resample=PILImageResampling.BICUBIC,
                               input_data_format=ChannelDimension.LAST).astype(np.uint8)

    t["video2_u8"] = np.stack([natural(56, 84, 3), natural(56, 84, 4)])
    r = proc(images=None, videos=[list(t["video2_u8"])], return_tensors="np")
    t["video2_rows"] = r["pixel_values_videos"].astype(np.float32)
    t["video4_u8"] = np.stack([natural(56, 56, 5 + i) for i in range(4)])
    r = proc(images=None, videos=[list(t["video4_u8"])], return_tensors="np")
    t["video4_rows"] = r["pixel_values_videos"].astype(np.float32)

    def tv(img, h, w):
        x = torch.from_numpy(img).permute(2, 0, 1).contiguous()
        y = TF.resize(x, [h, w], interpolation=InterpolationMode.BICUBIC, antialias=True)
        return y.permute(1, 2, 0).contiguous().numpy()

    t["tv_in"] = natural(120, 200, 9)
    t["tv_down"] = tv(t["tv_in"], 56, 84)
    t["tv_up_in"] = natural(40, 50, 10)
    t["tv_up"] = tv(t["tv_up_in"], 56, 84)
    t["pil_down"] = np.asarray(Image.fromarray(t["tv_in"]).resize((84, 56), Image.BICUBIC))

    safetensors.numpy.save_file({k: np.ascontiguousarray(v) for k, v in t.items()},
                                os.path.join(OUT, "pixels.safetensors"))
    for k, v in t.items():
        print(f"{k:12s} {str(v.dtype):8s} {list(v.shape)}")


if __name__ == "__main__":
    main()
