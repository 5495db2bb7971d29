"""Building and loading policies: a tiny Llama for the embedded world, any causal LM from a path."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM


def build_tiny_llama(
    tokenizer,
    hidden_size: int,
    num_layers: int,
    num_heads: int,
    intermediate_size: int,
    max_positions: int,
    seed: int,
) -> LlamaForCausalLM:
    """A randomly initialised Llama-architecture policy, built from a transformers config."""
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=max_positions,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config)


def load_policy(path: str, trust_remote_code: bool = False, dtype: str | None = None):
    """Load a policy and its tokenizer from a directory or hub id with `from_pretrained`.

    Remote code stays off unless the user turns it on: a checkpoint must not run code on load.
    """
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    kwargs = {"trust_remote_code": trust_remote_code}
    if dtype is not None:
        kwargs["dtype"] = getattr(torch, dtype)
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    return model, tokenizer


def n_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def save_atomic(out_dir: Path, *objects) -> Path:
    """`save_pretrained` every object into a temp directory, then rename it to out_dir.

    A half-written checkpoint never looks like a finished one; when two runs (a parallel sweep)
    build the same cached checkpoint, the first rename wins and the other copy is dropped.
    """
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.with_name(f"{out_dir.name}.tmp-{os.getpid()}")
    for obj in objects:
        obj.save_pretrained(tmp)
    try:
        tmp.rename(out_dir)
    except OSError:
        if not (out_dir / "config.json").exists():
            raise
        shutil.rmtree(tmp)
    return out_dir


def prepare_for_training(model, gradient_checkpointing: bool = False, lora: dict | None = None):
    """Memory levers for large policies: gradient checkpointing (recompute activations in the
    backward pass) and LoRA adapters (train low-rank updates only, through `peft`)."""
    if gradient_checkpointing:
        model.gradient_checkpointing_enable()
    if lora:
        try:
            from peft import LoraConfig, get_peft_model
        except ImportError:
            raise ImportError("model.lora needs the peft package: pip install peft") from None
        model = get_peft_model(model, LoraConfig(**lora))
    return model
