"""Data-parallel sharding of the loop's work: each rank computes its share, results are gathered."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Shard:
    """This process's data-parallel rank and the world size (1: a single process)."""

    rank: int = 0
    world: int = 1

    def mine(self, n: int) -> list[int]:
        """The indices this rank computes (round-robin, so uneven counts are no problem)."""
        return [i for i in range(n) if i % self.world == self.rank]

    def gather(self, mine: dict[int, object], n: int) -> list:
        """Every rank's {index: result} merged into one list of n results, on every rank."""
        if self.world > 1:
            import torch.distributed as dist

            parts = [None] * self.world
            dist.all_gather_object(parts, mine)
            mine = {i: v for part in parts for i, v in part.items()}
        missing = [i for i in range(n) if i not in mine]
        if missing:
            raise RuntimeError(f"data-parallel gather lost items {missing[:10]}")
        return [mine[i] for i in range(n)]
