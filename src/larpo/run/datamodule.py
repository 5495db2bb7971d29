"""The training lists of one iteration, tokenised once, and the datamodule that serves them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Sampler

from larpo.sequences import collate


@dataclass
class TrainingList:
    """One prompt's kept candidates, best first, with their reference log-probs."""

    prompt_ids: list[int]
    response_ids: list[list[int]]
    rewards: list[float]
    ref_logps: list[float] | None = None


def collate_lists(items: list[TrainingList], pad_id: int, share_prompt: bool = False) -> dict[str, torch.Tensor]:
    """Flatten the real candidates of B lists into one batch of sequences (no padded candidates
    are forwarded) and build the [B, m] mask, rewards, lengths and reference log-probs.
    `share_prompt`: with the layout that sends each list's prompt through the policy once."""
    m = max(len(it.response_ids) for it in items)
    b = len(items)
    mask = torch.zeros(b, m, dtype=torch.bool)
    rewards = torch.zeros(b, m)
    lengths = torch.ones(b, m, dtype=torch.long)
    ref = torch.zeros(b, m)
    seqs, slots = [], []
    for i, it in enumerate(items):
        n = len(it.response_ids)
        mask[i, :n] = True
        rewards[i, :n] = torch.tensor(it.rewards, dtype=torch.float32)
        lengths[i, :n] = torch.tensor([len(r) for r in it.response_ids])
        if it.ref_logps is not None:
            ref[i, :n] = torch.tensor(it.ref_logps, dtype=torch.float32)
        for j, r in enumerate(it.response_ids):
            seqs.append((it.prompt_ids, r))
            slots.append(i * m + j)
    batch = collate(seqs, pad_id, share_prompt)
    batch.update(mask=mask, rewards=rewards, lengths=lengths, slots=torch.tensor(slots))
    batch["ref_logps"] = ref if items[0].ref_logps is not None else None
    return batch


class EpochShuffle(Sampler):
    """A permutation drawn from (seed, epoch). The epoch is read when iteration begins (at the
    first batch), when the trainer's epoch counter is right also in a resumed run."""

    def __init__(self, n: int, seed: int, epoch: Callable[[], int]):
        self.n, self.seed, self.epoch = n, seed, epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch())
        yield from torch.randperm(self.n, generator=g).tolist()


class ListDataModule(pl.LightningDataModule):
    """Holds the current iteration's lists; the loop callback replaces them every iteration and
    Lightning reloads the dataloader (`reload_dataloaders_every_n_epochs=1`).

    The shuffle order is a function of the seed and the epoch, so a run resumed at any epoch sees
    the same batches as an uninterrupted one.
    """

    def __init__(self, batch_size: int, pad_id: int, seed: int, share_prompt: bool = False):
        super().__init__()
        self.batch_size, self.pad_id, self.seed = batch_size, pad_id, seed
        self.share_prompt = share_prompt  # each list's prompt through the policy once (model.share_prompt)
        self.lists: list[TrainingList] = []

    def set_lists(self, lists: list[TrainingList]) -> None:
        self.lists = lists

    def train_dataloader(self) -> DataLoader:
        if not self.lists:
            raise RuntimeError("no training lists: the loop callback has not produced any")
        return DataLoader(
            self.lists,
            batch_size=self.batch_size,
            sampler=EpochShuffle(len(self.lists), self.seed, lambda: self.trainer.current_epoch),
            collate_fn=lambda items: collate_lists(items, self.pad_id, self.share_prompt),
        )
