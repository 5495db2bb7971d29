"""Ranking objectives: one pure function per objective, one signature for all (`contract`).

- `contract`:  the `ObjectiveFn` protocol, shapes and the tie rule;
- `common`:    the pieces every objective shares (preferences, implicit reward, top-candidate NLL);
- `ranking`:   the paper's objectives: pairwise, contrastive, lambdarank, listmle, lipo;
- `listwise`:  infonca, nca, approxndcg, neuralndcg, pro, and the raft control;
- `baselines`: Table 2's ipo, simpo, slic, rrhf, cpo, kto, rdpo;
- `policy_gradient`: grpo and rloo, as TRL computes them, over the same lists;
- `binding`:   `Objective` (a function with its hyperparameters and capabilities), `from_config`,
               and `build(name, **hparams)`, which composes an option of the objective group;
- `schema`:    the group's typed keys.

`larpo.objectives.build("listmle", beta=0.2)` and `larpo.objectives.listmle` work from here; the
names load on first use, so the config layer can import `schema` without torch.
"""

from __future__ import annotations

import importlib

_MODULES = ("ranking", "listwise", "baselines", "policy_gradient", "binding", "contract")


def __getattr__(name: str):
    for module in _MODULES:
        mod = importlib.import_module(f"larpo.objectives.{module}")
        if not name.startswith("_") and hasattr(mod, name):
            return getattr(mod, name)
    raise AttributeError(f"module 'larpo.objectives' has no attribute {name!r}")
