"""An objective bound to its config: the loss function of its option's `_target_` with its
hyperparameters, plus what larpo needs to know about it (`sft_weight`, its capabilities).
`build(name, **hparams)` composes an option of the objective group and instantiates it."""

from __future__ import annotations

import inspect

from torch import Tensor

from larpo.objectives.common import mean_over_prompts, top_nll
from larpo.objectives.contract import ObjectiveFn


def sft_term(logps: Tensor, mask: Tensor, lengths: Tensor | None) -> Tensor:
    """Length-normalised NLL of the top candidate (the RPO / CPO extra term), mean over lists."""
    return mean_over_prompts(top_nll(logps, mask, lengths), mask[:, 0])


class Objective:
    """A loss function with the objective contract, its hyperparameters bound, plus what larpo
    needs to know about it: `loss(logps, ref_logps, mask, lengths=None, rewards=None)`.

    `sft_weight` adds `sft_weight * sft_term` to any objective (0 is the paper's setting).
    `needs_reference` / `needs_lengths` are the objective's capabilities, declared in its option file.
    """

    def __init__(
        self,
        fn: ObjectiveFn,
        sft_weight: float = 0.0,
        needs_reference: bool = True,
        needs_lengths: bool = False,
    ):
        self.fn, self.sft_weight = fn, float(sft_weight)
        self.needs_reference, self.needs_lengths = needs_reference, needs_lengths
        base = getattr(fn, "func", fn)
        self.name = getattr(base, "__name__", type(base).__name__)
        self.hparams = dict(getattr(fn, "keywords", {}))

    def __call__(self, logps, ref_logps, mask, lengths=None, rewards=None) -> Tensor:
        if self.needs_reference and ref_logps is None:
            raise ValueError(f"objective {self.name!r} needs reference log-probs (ref_logps)")
        if self.needs_lengths and lengths is None:
            raise ValueError(f"objective {self.name!r} needs response lengths (lengths)")
        mask = mask.bool()
        loss = self.fn(logps, ref_logps, mask, lengths, rewards)
        if self.sft_weight:
            loss = loss + self.sft_weight * sft_term(logps, mask, lengths)
        return loss

    def __repr__(self) -> str:
        return f"Objective({self.name!r}, sft_weight={self.sft_weight}, {self.hparams})"


def from_config(node) -> Objective:
    """The objective of an `objective` config node: its `_target_` with its hyperparameters bound,
    and its capabilities. Unknown hyperparameters fail here, naming the ones it takes."""
    from hydra.utils import instantiate

    from larpo.fields import ConfigError, instantiable
    from larpo.objectives.schema import ObjectiveSchema

    fn = instantiate(instantiable(node, ObjectiveSchema))  # a function: `_partial_: true` binds its keywords
    base = getattr(fn, "func", fn)
    try:
        if base is not fn:
            inspect.signature(base).bind(None, None, None, None, None, **fn.keywords)
    except TypeError as err:
        allowed = [p.name for p in inspect.signature(base).parameters.values() if p.kind is p.KEYWORD_ONLY]
        raise ConfigError(
            "objective", node.get("_target_"), f"{err}", f"its hyperparameters are {allowed + ['sft_weight']}"
        ) from None
    return Objective(
        fn, node.get("sft_weight", 0.0), node.get("needs_reference", True), node.get("needs_lengths", False)
    )


def build(name: str, config_dir: str | None = None, **hparams) -> Objective:
    """The objective option `name` (a file of the objective group, shipped or in `config_dir`),
    composed with Hydra and instantiated, with `hparams` (and `sft_weight`) overriding its keys.
    Keys not given keep the config's defaults (`beta` 0.1, `sft_weight` 1.0 for most objectives).
    The programmatic entry point for notebooks and tests; unknown names list the known ones."""
    from hydra.errors import MissingConfigException
    from omegaconf import open_dict

    from larpo.config.compose import compose
    from larpo.fields import ConfigError

    try:
        node = compose([f"objective={name}"], config_dir=config_dir).objective
    except MissingConfigException as err:
        known = ", ".join(sorted(err.options or []))
        raise ValueError(f"unknown objective {name!r}; known objectives: {known}") from None
    with open_dict(node):
        for key, value in hparams.items():
            node[key] = value
    try:
        return from_config(node)
    except ConfigError as err:
        raise ValueError(str(err)) from None
