"""The objective contract (design.md): what a loss function of the `objective` group provides.

Every objective takes
    logps, ref_logps : [B, m] summed response log-probs under the policy / reference
                       (ref_logps may be None for reference-free objectives)
    mask             : [B, m] bool, True for real candidates; shorter lists are padded at the end
    lengths          : [B, m] response token counts (length-normalised objectives), optional
    rewards          : [B, m] reranker scores; optional, used for ties and LiPO weights
with candidates sorted best first, and returns the mean loss over the prompts that carry a term.
Its hyperparameters are keyword-only; the option file binds them (`_partial_: true`).

A pair of candidates is a preference only when the first one's reward is *strictly* higher: tied
candidates give no pairwise term. Without rewards, the list order is a strict ranking.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import Tensor


@runtime_checkable
class ObjectiveFn(Protocol):
    def __call__(
        self,
        logps: Tensor,
        ref_logps: Tensor | None,
        mask: Tensor,
        lengths: Tensor | None = None,
        rewards: Tensor | None = None,
    ) -> Tensor: ...
