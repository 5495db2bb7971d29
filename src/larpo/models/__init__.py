"""Policies: `policy` (loading with `from_pretrained`, the tiny Llama of the embedded worlds,
LoRA and gradient checkpointing, atomic saving); `schema` holds the `model` group's typed keys."""
