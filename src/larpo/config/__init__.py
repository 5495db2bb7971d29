"""larpo's configuration: the typed schema, the walker that checks it, the rules between groups,
and composition outside the CLI. The field types every package's schema uses (`ConfigError`, the
one line users see; numeric fields with ranges; enums) sit on the ground floor, in `larpo.fields`,
so that this package stands above the packages it assembles.

- `schema`:  the root schema, assembled from each package's own `schema` module, and its
             registration in Hydra's ConfigStore;
- `walker`:  `check_keys`, types and ranges of every key of a node;
- `rules`:   `check`, the whole config: the walker, then the rules between groups;
- `compose`: `compose` and the resolvers of the shipped configs.

Everything here imports only the standard library, Hydra and OmegaConf: `larpo --help`,
`--cfg job` and every config error cost what Hydra costs (no torch). The names below are loaded
on first use, so importing one submodule never imports the others.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "ConfigError": "larpo.fields",
    "Range": "larpo.fields",
    "TrainSchema": "larpo.config.schema",
    "GROUP_SCHEMAS": "larpo.config.schema",
    "component": "larpo.config.schema",
    "register": "larpo.config.schema",
    "check_keys": "larpo.config.walker",
    "check": "larpo.config.rules",
    "compose": "larpo.config.compose",
}


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'larpo.config' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


__all__ = list(_EXPORTS)
