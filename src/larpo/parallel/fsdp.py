"""Fully sharded data parallel (`trainer=fsdp`): torch's `fully_shard` (FSDP2) through Lightning's
`ModelParallelStrategy`, on GPUs with NCCL or on CPU processes with gloo.

Training steps run on the sharded policy. Generation, reference log-probs, evaluation and
`save_pretrained` run on a full copy gathered from the shards: ranks generate different prompts
for different numbers of steps, so they cannot share the sharded forward's collectives.
"""

from __future__ import annotations

import torch
from pytorch_lightning.strategies import ModelParallelStrategy
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor import DTensor


class FullyShardedStrategy(ModelParallelStrategy):
    """ModelParallelStrategy with every process in one data-parallel (sharding) group and no tensor
    parallelism: plain FSDP over all devices of all nodes."""

    def setup_environment(self) -> None:
        self._data_parallel_size = self.num_nodes * self.num_processes
        self._tensor_parallel_size = 1
        super().setup_environment()


def is_sharded(model: torch.nn.Module) -> bool:
    return any(isinstance(p, DTensor) for p in model.parameters())


def shard_policy(policy: torch.nn.Module, mesh) -> None:
    """fully_shard each transformer block (the model's `_no_split_modules`), then the rest."""
    blocks = set(getattr(policy, "_no_split_modules", None) or [])
    for module in policy.modules():
        if type(module).__name__ in blocks:
            fully_shard(module, mesh=mesh)
    fully_shard(policy, mesh=mesh)


def full_copy(policy: torch.nn.Module) -> torch.nn.Module:
    """An unsharded copy of a sharded policy with its full weights, on every rank (a collective:
    every rank must call it)."""
    state = get_model_state_dict(policy, options=StateDictOptions(full_state_dict=True))
    with torch.device("meta"):  # no second random initialisation: every weight comes from `state`
        copy = type(policy)(policy.config)
    copy.load_state_dict(state, assign=True)
    for name, buffer in policy.named_buffers():  # buffers are not sharded (e.g. rotary tables)
        owner, _, leaf = name.rpartition(".")
        setattr(copy.get_submodule(owner), leaf, buffer.clone())
    copy.tie_weights()
    copy.generation_config = policy.generation_config
    return copy.train(policy.training)
