"""Composition outside the CLI (notebooks, tests, `objectives.build`), and the resolvers the
shipped configs use."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

CONFIG_MODULE = "larpo.conf"


def _unique_id() -> str:
    """A short random id: two runs started in the same second never share a directory."""
    import secrets

    return secrets.token_hex(3)


def register_resolvers() -> None:
    OmegaConf.register_new_resolver("larpo.or", lambda a, b: a if a not in (None, "") else b, replace=True)
    OmegaConf.register_new_resolver("larpo.unless", lambda a, b: None if a not in (None, "") else b, replace=True)
    # cached: every use in one process gets the same id (the run dir is read more than once)
    OmegaConf.register_new_resolver("larpo.uid", _unique_id, replace=True, use_cache=True)


register_resolvers()


def compose(
    overrides: list[str] = (), config_name: str = "train", config_dir: str | None = None, return_hydra_config=False
) -> DictConfig:
    """The config the CLI would compose from `overrides` (with a user's `--config-dir`), without
    running anything. Inside a running Hydra app, its already initialised search path is used."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    overrides = list(overrides)
    if config_dir is not None:
        overrides.append(f"hydra.searchpath=[file://{Path(config_dir).resolve()}]")
    if GlobalHydra.instance().is_initialized():
        return hydra_compose(config_name, overrides=overrides, return_hydra_config=return_hydra_config)
    with initialize_config_module(CONFIG_MODULE, version_base="1.3"):
        return hydra_compose(config_name, overrides=overrides, return_hydra_config=return_hydra_config)
