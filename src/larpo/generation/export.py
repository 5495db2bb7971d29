"""`larpo-generate`: write a policy's answers to a prompt file in AlpacaEval's format.

AlpacaEval 2 and MixEval need LLM judges that cannot run offline; this exports what they judge:
a JSON list of {"instruction", "output", "generator"}, one per prompt, extra input fields kept.
"""

from __future__ import annotations

import logging
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig

from larpo import strict_json
from larpo.data.records import chat_prompt, read_records
from larpo.fields import instantiable
from larpo.generation.contract import Cut
from larpo.generation.schema import GeneratorSchema
from larpo.models.policy import load_policy

log = logging.getLogger("larpo")


def alpaca_records(records: list[dict], outputs: list[str], generator: str) -> list[dict]:
    """AlpacaEval rows: the input record's fields (e.g. `dataset`), plus instruction/output/generator."""
    rows = []
    for record, output in zip(records, outputs, strict=True):
        row = {k: v for k, v in record.items() if k not in ("messages", "output", "generator")}
        row.update(instruction=record.get("instruction") or chat_prompt(record), output=output, generator=generator)
        rows.append(row)
    return rows


def generator_name(cfg: DictConfig) -> str:
    """The `generator` field: `name=`, else the run directory of a run's policy
    (`outputs/<date>/<time>/policy` -> `<date>_<time>`), else the model directory's name."""
    if cfg.name:
        return str(cfg.name)
    path = Path(str(cfg.model.path).rstrip("/")).expanduser()
    if path.name == "policy" and (path.parent / "summary.json").is_file():
        return "_".join(path.parent.parts[-2:])
    return path.name


def generate(cfg: DictConfig) -> Path:
    records = read_records(str(Path(cfg.prompts).expanduser()))
    rows, prompts = [], []
    for n, row in records.rows:
        try:
            prompts.append(chat_prompt(row))
            rows.append(row)
        except ValueError as err:
            records.skip(n, str(err))
    log.info("generate: %d prompts from %s (%d lines skipped)", len(prompts), cfg.prompts, len(records.skipped))
    model, tokenizer = load_policy(cfg.model.path, trust_remote_code=cfg.model.trust_remote_code, dtype=cfg.model.dtype)
    generator = instantiate(instantiable(cfg.generator, GeneratorSchema))
    outputs = [rs[0] for rs in generator(model, tokenizer, prompts, 1, cfg.temperature, cfg.seed, desc="answers")]
    out = Path(cfg.out).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(strict_json.dumps(alpaca_records(rows, outputs, generator_name(cfg)), indent=2, ensure_ascii=False))
    log.info("generate: %d answers written to %s", len(outputs), out)
    cut = sum(isinstance(o, Cut) for o in outputs)
    if cut:  # an answer cut mid-sentence is judged as if it were the policy's whole answer
        log.warning(
            "generate: %d of %d answers stopped at generator.max_new_tokens=%s without ending; raise it",
            cut,
            len(outputs),
            cfg.generator.get("max_new_tokens"),
        )
    return out
