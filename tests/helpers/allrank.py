"""allRank 1.4.3's own loss functions as a peer of larpo's listwise objectives, loaded from its
wheel (installed without its dependencies, which pin torch<=1.8 and torchvision): its package
modules are stood in for by the three names the loss files import (PADDED_Y_VALUE, DEFAULT_EPS,
get_torch_device)."""

import importlib
import subprocess
import sys
import types
import zipfile
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch


@contextmanager
def allrank_losses(where: Path):
    got = subprocess.run(
        [sys.executable, "-m", "pip", "download", "allrank==1.4.3", "--no-deps", "-d", str(where), "-q"],
        capture_output=True,
        text=True,
    )
    if got.returncode != 0:
        pytest.skip(f"allrank could not be downloaded: {got.stderr[-300:]}")
    zipfile.ZipFile(next(where.glob("*.whl"))).extractall(where)
    saved = {k: v for k, v in sys.modules.items() if k == "allrank" or k.startswith("allrank.")}
    names = ["allrank", "allrank.data", "allrank.data.dataset_loading", "allrank.models"]
    stubs = {n: types.ModuleType(n) for n in [*names, "allrank.models.model_utils", "allrank.models.losses"]}
    stubs["allrank.data.dataset_loading"].PADDED_Y_VALUE = -1
    stubs["allrank.models"].__path__ = [str(where / "allrank" / "models")]
    stubs["allrank.models.model_utils"].get_torch_device = lambda: torch.device("cpu")
    stubs["allrank.models.losses"].__path__ = [str(where / "allrank" / "models" / "losses")]
    stubs["allrank.models.losses"].DEFAULT_EPS = 1e-10
    sys.modules.update(stubs)
    try:
        yield {
            name: getattr(importlib.import_module(f"allrank.models.losses.{module}"), name)
            for module, name in [("listNet", "listNet"), ("approxNDCG", "approxNDCGLoss"), ("neuralNDCG", "neuralNDCG")]
        }
    finally:
        for k in [k for k in sys.modules if k == "allrank" or k.startswith("allrank.")]:
            del sys.modules[k]
        sys.modules.update(saved)
