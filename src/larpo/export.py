"""`larpo-generate`: write a policy's answers to a prompt file in AlpacaEval's format.

AlpacaEval 2 and MixEval need LLM judges that cannot run offline; this exports what they judge:
a JSON list of {"instruction", "output", "generator"}, one per prompt, extra input fields kept.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig

from larpo.models import load_policy
from larpo.sources import chat_prompt, read_records
from larpo.train import CONFIG_PATH, ConfigError, build_generator

log = logging.getLogger("larpo")


def alpaca_records(records: list[dict], outputs: list[str], generator: str) -> list[dict]:
    """AlpacaEval rows: the input record's fields (e.g. `dataset`), plus instruction/output/generator."""
    rows = []
    for record, output in zip(records, outputs, strict=True):
        row = {k: v for k, v in record.items() if k not in ("messages", "output", "generator")}
        row.update(
            instruction=record.get("instruction") or chat_prompt(record), output=output, generator=generator
        )
        rows.append(row)
    return rows


def generate(cfg: DictConfig) -> Path:
    if not cfg.prompts or not Path(cfg.prompts).expanduser().is_file():
        raise ConfigError(
            f"prompts={cfg.prompts}: give a JSON or JSONL file of prompts (instruction, prompt or messages)"
        )
    if not cfg.model.get("path"):
        raise ConfigError("larpo-generate needs model.path=<hub id or directory>, e.g. <run_dir>/policy")
    records, bad = read_records(str(Path(cfg.prompts).expanduser()))
    records = [r for r in records if chat_prompt(r)]
    prompts = [chat_prompt(r) for r in records]
    log.info("generate: %d prompts from %s (%d malformed lines skipped)", len(prompts), cfg.prompts, len(bad))
    model, tokenizer = load_policy(
        cfg.model.path, trust_remote_code=cfg.model.trust_remote_code, dtype=cfg.model.get("dtype")
    )
    generator = build_generator(cfg, cfg.model.path)
    outputs = [
        rs[0] for rs in generator(model, tokenizer, prompts, 1, cfg.temperature, cfg.seed, desc="answers")
    ]
    name = cfg.name or Path(str(cfg.model.path).rstrip("/")).name
    out = Path(cfg.out).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(alpaca_records(records, outputs, name), indent=2, ensure_ascii=False))
    log.info("generate: %d answers written to %s", len(outputs), out)
    return out


@hydra.main(config_path=CONFIG_PATH, config_name="generate", version_base="1.3")
def main(cfg: DictConfig) -> None:
    try:
        generate(cfg)
    except ConfigError as err:
        raise SystemExit(f"larpo-generate: invalid config: {err}") from None


if __name__ == "__main__":
    main()
