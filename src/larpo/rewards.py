"""Reward models (the rerankers): each scores a list of candidate responses per prompt.

`score(prompts, candidates)` returns one reward per candidate. A list-relative reward model
(`list_relative = True`, e.g. a pairwise ranker) must be re-run on merged lists, because its scores
depend on the other candidates of the list.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from pathlib import Path

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
)

from larpo.models import save_atomic
from larpo.sequences import messages, unflatten, uses_chat_template
from larpo.sft import stage_trainer, task_from_config
from larpo.sources import answers_match
from larpo.worlds.arithmetic import ArithmeticTask, build_tokenizer, judge, true_answer, unrelated_response

log = logging.getLogger(__name__)


class JudgeReward:
    """The gold judge used as the reward model (`reward_model=judge`)."""

    list_relative = False

    def __init__(self, progress: bool = True):
        self.progress = progress

    def score(self, prompts: list[str], candidates: list[list[str]]) -> list[list[float]]:
        pairs = zip(prompts, candidates, strict=True)
        return [
            [judge(p, r) for r in rs]
            for p, rs in tqdm(pairs, total=len(prompts), desc="score", disable=not self.progress, leave=False)
        ]


class SequenceClassifierReward:
    """A transformers sequence classifier; the reward is the raw logit of prompt + response.

    Its tokenizer is its own, so policy and reward model may tokenise differently. When that
    tokenizer has a chat template (FsfairX-LLaMA3-RM has), the conversation [user: prompt,
    assistant: response] is rendered with it; otherwise the text is prompt + response.
    """

    list_relative = False

    def __init__(
        self,
        path: str,
        batch_size: int = 512,
        progress: bool = True,
        trust_remote_code: bool = False,
        dtype: str | None = None,
        device: str | None = None,
    ):
        self.tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        kwargs = {"trust_remote_code": trust_remote_code}
        if dtype:
            kwargs["dtype"] = getattr(torch, dtype)
        self.model = AutoModelForSequenceClassification.from_pretrained(path, **kwargs).eval()
        if device:
            self.model.to(device)
        self.batch_size, self.progress = batch_size, progress

    def text(self, prompt: str, response: str) -> str:
        if not uses_chat_template(self.tokenizer):
            return prompt + response
        chat = [*messages(prompt), {"role": "assistant", "content": response}]
        return self.tokenizer.apply_chat_template(chat, tokenize=False)

    @torch.no_grad()
    def score(self, prompts: list[str], candidates: list[list[str]]) -> list[list[float]]:
        texts = [self.text(p, r) for p, rs in zip(prompts, candidates, strict=True) for r in rs]
        templated = uses_chat_template(self.tokenizer)  # the template writes its own BOS
        flat: list[float] = []
        for start in tqdm(
            range(0, len(texts), self.batch_size), desc="score", disable=not self.progress, leave=False
        ):
            enc = self.tokenizer(
                texts[start : start + self.batch_size],
                padding=True,
                return_tensors="pt",
                add_special_tokens=not templated,
            ).to(self.model.device)
            flat += self.model(**enc).logits[:, 0].float().tolist()
        return unflatten(flat, candidates)


class PairRMReward:
    """LLM-Blender's PairRM, a pairwise ranker (`pip install llm-blender`, imported only here).

    It compares the candidates of one list with each other, so its scores are relative to the
    list (`list_relative`): a merged list is scored again, never stitched from old scores.
    """

    list_relative = True

    def __init__(self, path: str = "llm-blender/PairRM", batch_size: int = 16, progress: bool = True):
        try:
            import llm_blender
        except ImportError:
            raise ImportError(
                "reward_model=pairrm needs the llm-blender package: pip install llm-blender"
            ) from None
        self.blender = llm_blender.Blender()
        self.blender.loadranker(path)
        self.batch_size, self.progress = batch_size, progress

    def score(self, prompts: list[str], candidates: list[list[str]]) -> list[list[float]]:
        texts = [messages(p)[-1]["content"] for p in prompts]
        scores = self.blender.rank(
            texts, candidates, return_scores=True, batch_size=self.batch_size, disable_tqdm=not self.progress
        )
        return [[float(x) for x in row] for row in scores]


class VerifierReward:
    """GSM8K-style answer checking: 1 when the final number of a response equals the reference
    answer's numerically, else 0 (a missing number is 0). Never a substring match."""

    list_relative = False

    def __init__(self, reference, progress: bool = True):
        self.reference, self.progress = reference, progress

    def score(self, prompts: list[str], candidates: list[list[str]]) -> list[list[float]]:
        out = []
        for p, rs in tqdm(
            zip(prompts, candidates, strict=True),
            total=len(prompts),
            desc="score",
            disable=not self.progress,
            leave=False,
        ):
            ref = self.reference(p)
            out.append([float(ref is not None and answers_match(r, ref)) for r in rs])
        return out


# --- the learned reward model of the embedded world ---------------------------------------------


class _BradleyTerry(pl.LightningModule):
    """-log sigmoid(r(better) - r(worse)) on judge comparisons with flipped labels."""

    def __init__(self, model, lr: float):
        super().__init__()
        self.model, self.lr = model.train(), lr

    def training_step(self, batch, _):
        r = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, 0]
        loss = -torch.nn.functional.logsigmoid(r[0::2] - r[1::2]).mean()
        self.log("rm/loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.AdamW(self.model.parameters(), lr=self.lr)


def train_learned_reward(
    task: ArithmeticTask, rm_cfg: DictConfig, seed: int, out_dir: Path, init_path: str, progress: bool = True
) -> Path:
    """Train a tiny reward model on noisy judge comparisons of plausible answers.

    Like a real reward model it starts from the SFT policy's weights, with a new scalar head.
    Pairs are the exact answer against a near miss (`truth_share` of them), two near misses, or a
    near miss against a malformed answer: the answers a policy gives. Each pair is ordered by the
    judge, then flipped with probability `label_noise`, so the reward model is an imperfect
    reranker, like a real one.
    """
    rng = random.Random(seed)
    tokenizer = build_tokenizer()
    tokenizer.padding_side = "right"
    pairs = []
    for prompt in task.prompts(rm_cfg.pairs, seed=seed + 7):
        truth = true_answer(prompt)
        near = [str(truth + d) for d in range(-task.noise_scale, task.noise_scale + 1) if d]
        if rng.random() < rm_cfg.truth_share:  # the exact answer against a near miss
            a, b = str(truth), rng.choice(near)
        else:  # two near misses, or a near miss against a malformed answer
            a, b = rng.sample(near, 2) if rng.random() < 0.8 else (rng.choice(near), unrelated_response(rng))
        better, worse = (a, b) if judge(prompt, a) >= judge(prompt, b) else (b, a)
        if rng.random() < rm_cfg.label_noise:
            better, worse = worse, better
        pairs.append((prompt + better, prompt + worse))

    def collate(batch):
        return tokenizer([t for pair in batch for t in pair], padding=True, return_tensors="pt")

    loader = DataLoader(
        pairs,
        batch_size=rm_cfg.batch_size,
        shuffle=True,
        collate_fn=collate,
        generator=torch.Generator().manual_seed(seed),
    )
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_pretrained(init_path, num_labels=1)
    pl.seed_everything(seed, verbose=False)
    trainer = stage_trainer(progress, max_epochs=rm_cfg.epochs)
    trainer.fit(_BradleyTerry(model, rm_cfg.lr), loader)
    return save_atomic(out_dir, model, tokenizer)


def learned_reward_path(
    task: ArithmeticTask, rm_cfg: DictConfig, cache_dir: str, seed: int, init_path: str, progress: bool = True
) -> Path:
    """Directory of the learned reward model, trained first if not cached (keyed by its config)."""
    key = json.dumps(
        {"task": task.__dict__, "rm": OmegaConf.to_container(rm_cfg), "seed": seed, "init": str(init_path)},
        sort_keys=True,
        default=str,
    )
    path = Path(cache_dir).expanduser() / f"rm-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
    if not (path / "config.json").exists():
        log.info("reward model: training the learned reward model")
        train_learned_reward(task, rm_cfg, seed, path, init_path, progress)
    return path


def build_reward_model(cfg: DictConfig, policy_path: str, reference=None, device: str | None = None):
    """The reward model named by `cfg.reward_model.name` (`reference`: gold answers, for the verifier)."""
    rm, name = cfg.reward_model, cfg.reward_model.name
    if name == "judge":
        return JudgeReward(progress=cfg.progress)
    if name == "learned":
        task = task_from_config(cfg.data)
        path = learned_reward_path(task, rm, cfg.model.cache_dir, cfg.seed, policy_path, cfg.progress)
        return SequenceClassifierReward(str(path), progress=cfg.progress)
    if name == "sequence_classifier":
        return SequenceClassifierReward(
            rm.path,
            batch_size=rm.batch_size,
            progress=cfg.progress,
            trust_remote_code=rm.trust_remote_code,
            dtype=rm.get("dtype"),
            device=device,
        )
    if name == "pairrm":
        return PairRMReward(rm.path, batch_size=rm.batch_size, progress=cfg.progress)
    if name == "verifier":
        return VerifierReward(reference, progress=cfg.progress)
    raise ValueError(
        f"unknown reward_model {name!r}: use judge, learned, sequence_classifier, pairrm or verifier"
    )
