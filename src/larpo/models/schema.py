"""The `model` group's schema: a pretrained policy's path and loading options, or a tiny
architecture with its SFT stage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from larpo.fields import DType, at_least, positive


@dataclass
class Arch:
    hidden_size: int = at_least(1, 128)
    num_layers: int = at_least(1, 4)
    num_heads: int = at_least(1, 4)
    intermediate_size: int = at_least(1, 384)
    max_positions: int = at_least(8, 32)


@dataclass
class SFT:
    steps: int = at_least(1, 1200)
    batch_size: int = at_least(1, 128)
    lr: float = positive(1e-3)
    warmup: int = at_least(0, 100)
    examples: int = at_least(1, 153600)


@dataclass
class ModelSchema:
    path: str | None = None
    cache_dir: str = "~/.cache/larpo"
    trust_remote_code: bool = False
    dtype: DType | None = None
    gradient_checkpointing: bool = False
    share_prompt: bool = False  # each list's prompt through the policy once, its KV cache for its k answers
    lora: dict[str, Any] | None = None
    merge_lora: bool = False  # save the policy with its LoRA adapters merged into the weights
    gguf: dict[str, str] | None = None  # {package, file}: a GGUF file in an installed package (model.path null)
    arch: Arch | None = None
    sft: SFT | None = None
