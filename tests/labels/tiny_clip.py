"""Small randomly initialised CLIP models, saved as the real files are laid out.

No CLIP weights can be obtained on the project's machines, so the text labeler's tests build
models with the same libraries (transformers, open_clip), save them in the layout of the
real repositories and load them through the real path (`labels.text`).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch


def _bytes_to_unicode() -> dict[int, str]:
    """CLIP's (GPT-2's) byte -> printable character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(161, 173)) + list(range(174, 256))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs), strict=True))


def save_transformers_clip(folder: Path, *, image_size: int = 32, seed: int = 0) -> Path:
    """A tiny ``CLIPModel`` with a byte-level vocabulary (no merges), saved like
    ``openai/clip-vit-base-patch32``: config.json, model.safetensors, preprocessor_config.json
    and the tokenizer files (vocab.json, merges.txt, tokenizer_config.json ...)."""
    from transformers import (
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        CLIPTextConfig,
        CLIPTokenizer,
        CLIPVisionConfig,
    )

    folder.mkdir(parents=True, exist_ok=True)
    chars = list(_bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": 256 + i for i, c in enumerate(chars)})
    vocab["<|startoftext|>"], vocab["<|endoftext|>"] = 512, 513
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    images = CLIPImageProcessor(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
    )
    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config=CLIPTextConfig(
            vocab_size=514,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            max_position_embeddings=77,
            bos_token_id=512,
            eos_token_id=513,
            pad_token_id=513,
        ).to_dict(),
        vision_config=CLIPVisionConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=image_size,
            patch_size=16,
        ).to_dict(),
        projection_dim=16,
    )
    CLIPModel(config).eval().save_pretrained(folder)
    # each part on its own, as the openai repository has them (no processor_config.json)
    tokenizer.save_pretrained(folder)
    images.save_pretrained(folder)
    return folder


OPEN_CLIP_CONFIG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def save_open_clip(folder: Path, *, seed: int = 0) -> Path:
    """A tiny open_clip ``CLIP`` (open_clip's own tokenizer, which ships in the wheel), saved
    like the LAION repositories: open_clip_config.json + open_clip_model.safetensors."""
    from open_clip.model import CLIP
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = CLIP(**OPEN_CLIP_CONFIG).eval()
    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()},
        str(folder / "open_clip_model.safetensors"),
    )
    preprocess = {"mean": [0.4815, 0.4578, 0.4082], "std": [0.2686, 0.2613, 0.2758]}
    (folder / "open_clip_config.json").write_text(
        json.dumps({"model_cfg": OPEN_CLIP_CONFIG, "preprocess_cfg": preprocess})
    )
    return folder
