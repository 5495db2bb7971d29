"""Every objective against an independent plain computation: explicit loops, Python floats.

The inputs are random, with padded (ragged) lists and tied rewards, so a normaliser that counts
padding or a tie that acts as a preference makes these fail.
"""

import math
import random
from pathlib import Path

import pytest
import torch
from helpers.configs import CONF

from larpo import objectives

OPTIONS = sorted(p.stem for p in (Path(CONF) / "objective").glob("*.yaml"))


def logsig(x: float) -> float:
    return -math.log1p(math.exp(-x)) if x >= 0 else x - math.log1p(math.exp(x))


def lse(xs: list[float]) -> float:
    m = max(xs)
    return m + math.log(sum(math.exp(x - m) for x in xs))


def random_batch(seed: int, batch: int = 6, m: int = 5, scale: float = 3.0):
    """Random log-probs, ragged lists (2..m real candidates), rewards sorted best first with ties."""
    g = torch.Generator().manual_seed(seed)
    logps = -torch.rand(batch, m, generator=g, dtype=torch.float64) * 20 * scale
    ref = -torch.rand(batch, m, generator=g, dtype=torch.float64) * 20 * scale
    lengths = torch.randint(1, 9, (batch, m), generator=g)
    mask = torch.zeros(batch, m, dtype=torch.bool)
    rewards = torch.zeros(batch, m, dtype=torch.float64)
    rng = random.Random(seed)
    for b in range(batch):
        n = rng.randint(2, m)
        mask[b, :n] = True
        # few distinct values so ties are common; sorted best first
        rewards[b, :n] = torch.tensor(sorted((rng.choice([0.0, 0.5, 1.0]) for _ in range(n)), reverse=True))
        rewards[b, n:] = rng.uniform(-5, 5)  # garbage in padding must not matter
        logps[b, n:] = float("nan") if b % 2 else 1e6  # so must padded log-probs
        ref[b, n:] = float("nan") if b % 2 else -1e6
    return logps, ref, mask, lengths, rewards


def rows(logps, ref, mask, lengths, rewards):
    """Plain per-prompt lists of the real candidates."""
    for b in range(mask.shape[0]):
        n = int(mask[b].sum())
        yield (
            [float(x) for x in logps[b, :n]],
            [float(x) for x in ref[b, :n]],
            [int(x) for x in lengths[b, :n]],
            [float(x) for x in rewards[b, :n]],
        )


def mean(per_prompt: list[float | None]) -> float:
    terms = [x for x in per_prompt if x is not None]
    return sum(terms) / len(terms) if terms else 0.0


# --- plain references ---------------------------------------------------------------------------


def ref_pairwise(lp, rf, ln, rw, beta=0.1):
    if rw[0] <= rw[-1]:
        return None
    return -logsig(beta * (lp[0] - rf[0]) - beta * (lp[-1] - rf[-1]))


def ref_contrastive(lp, rf, ln, rw, beta=0.1, positives=1):
    """The paper code's InfoNCE with positive_N: the first `positives` candidates in the numerator;
    the negatives are those after them strictly worse than the lowest positive (ties: neither)."""
    g = [beta * (a - b) for a, b in zip(lp, rf)]
    pos = list(range(min(positives, len(g))))
    neg = [j for j in range(len(pos), len(g)) if rw[j] < min(rw[i] for i in pos)]
    return None if not neg else -(lse([g[i] for i in pos]) - lse([g[i] for i in pos + neg]))


def ref_lambdarank(lp, rf, ln, rw, beta=0.1, normalize=False):
    g = [beta * (a - b) for a, b in zip(lp, rf)]
    terms = [-logsig(g[i] - g[j]) for i in range(len(g)) for j in range(len(g)) if rw[i] > rw[j]]
    if not terms:
        return None
    return sum(terms) / (len(terms) if normalize else 1)


def ref_listmle(lp, rf, ln, rw, beta=0.1, normalize=False):
    g = [beta * (a - b) for a, b in zip(lp, rf)]
    terms = []
    for i in range(len(g)):
        worse = [g[j] for j in range(len(g)) if rw[j] < rw[i]]
        if worse:
            terms.append(-(g[i] - lse([g[i]] + worse)))
    if not terms:
        return None
    return sum(terms) / (len(terms) if normalize else 1)


def ref_lipo(lp, rf, ln, rw, beta=0.1, normalize=False):
    g = [beta * (a - b) for a, b in zip(lp, rf)]
    order = sorted(range(len(g)), key=lambda i: -g[i])
    tau = {i: r + 1 for r, i in enumerate(order)}
    terms = []
    for i in range(len(g)):
        for j in range(len(g)):
            if rw[i] > rw[j]:
                lam = abs(2 ** rw[i] - 2 ** rw[j]) * abs(1 / math.log2(1 + tau[i]) - 1 / math.log2(1 + tau[j]))
                terms.append(-lam * logsig(g[i] - g[j]))
    if not terms:
        return None
    return sum(terms) / (len(terms) if normalize else 1)


def ref_ipo(lp, rf, ln, rw, beta=0.1):
    if rw[0] <= rw[-1]:
        return None
    return ((lp[0] - rf[0]) - (lp[-1] - rf[-1]) - 1 / (2 * beta)) ** 2


def ref_simpo(lp, rf, ln, rw, beta=2.0, gamma=1.0):
    if rw[0] <= rw[-1]:
        return None
    return -logsig(beta * lp[0] / ln[0] - beta * lp[-1] / ln[-1] - gamma)


def ref_slic(lp, rf, ln, rw, delta=1.0, reg_weight=0.1):
    if rw[0] <= rw[-1]:
        return None
    return max(0.0, delta - lp[0] + lp[-1]) - reg_weight * lp[0]


def ref_rrhf(lp, rf, ln, rw, ft_weight=1.0):
    p = [a / n for a, n in zip(lp, ln)]
    pairs = [(i, j) for i in range(len(p)) for j in range(len(p)) if rw[i] > rw[j]]
    if not pairs:
        return None
    return sum(max(0.0, p[j] - p[i]) for i, j in pairs) - ft_weight * lp[0]


def ref_cpo(lp, rf, ln, rw, beta=0.1, nll_weight=1.0):
    if rw[0] <= rw[-1]:
        return None
    return -logsig(beta * (lp[0] - lp[-1])) - nll_weight * lp[0] / ln[0]


def ref_rdpo(lp, rf, ln, rw, beta=0.1, alpha=0.01):
    if rw[0] <= rw[-1]:
        return None
    return -logsig(beta * ((lp[0] - rf[0]) - (lp[-1] - rf[-1])) - alpha * (ln[0] - ln[-1]))


def ref_kto_batch(data, beta=0.1, desirable_weight=1.0, undesirable_weight=1.0):
    pairs = [(lp[0] - rf[0], lp[-1] - rf[-1]) for lp, rf, ln, rw in data if rw[0] > rw[-1]]
    if not pairs:
        return 0.0
    z0 = max(0.0, sum((a + b) / 2 for a, b in pairs) / len(pairs))
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    losses = [
        desirable_weight * (1 - sig(beta * (a - z0))) + undesirable_weight * (1 - sig(beta * (z0 - b)))
        for a, b in pairs
    ]
    return sum(losses) / len(losses)


def softmax(xs: list[float]) -> list[float]:
    z = lse(xs)
    return [math.exp(x - z) for x in xs]


def tied(rw) -> bool:
    return max(rw) == min(rw)


def ref_infonca(lp, rf, ln, rw, beta=0.1, alpha=1.0):
    if tied(rw):
        return None
    g = [beta * (a - b) for a, b in zip(lp, rf)]
    return -sum(w * (x - lse(g)) for w, x in zip(softmax([r / alpha for r in rw]), g))


def ref_nca(lp, rf, ln, rw, beta=0.1, alpha=1.0):
    if tied(rw):
        return None
    g = [beta * (a - b) for a, b in zip(lp, rf)]
    w = softmax([r / alpha for r in rw])
    return -sum(wi * logsig(x) + logsig(-x) / len(g) for wi, x in zip(w, g))


def gains_of(rw, gains):
    labels = [r - min(rw) for r in rw] if gains == "shift" else [max(r, 0.0) for r in rw]
    return [2.0**x - 1.0 for x in labels]


def ideal_dcg(gain):
    return sum(x / math.log2(r + 2) for r, x in enumerate(sorted(gain, reverse=True)))


def ref_approxndcg(lp, rf, ln, rw, beta=0.1, alpha=1.0, gains="shift"):
    g = [beta * (a - b) for a, b in zip(lp, rf)]
    gain = gains_of(rw, gains)
    ideal = ideal_dcg(gain)
    if ideal <= 0:
        return None
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    rank = [1 + sum(sig(alpha * (g[j] - g[i])) for j in range(len(g)) if j != i) for i in range(len(g))]
    return -sum(x / math.log2(1 + r) for x, r in zip(gain, rank)) / ideal


def ref_neuralndcg(lp, rf, ln, rw, beta=0.1, temperature=1.0, gains="shift"):
    g = [beta * (a - b) for a, b in zip(lp, rf)]
    k = len(g)
    gain = gains_of(rw, gains)
    ideal = ideal_dcg(gain)
    if ideal == 0:
        return None
    spread = [sum(abs(g[j] - x) for x in g) for j in range(k)]
    p = [softmax([((k + 1 - 2 * (r + 1)) * g[j] - spread[j]) / temperature for j in range(k)]) for r in range(k)]
    for _ in range(50):  # Sinkhorn: columns, then rows, until both sums are within 1e-6 of 1
        cols = [sum(p[r][j] for r in range(k)) for j in range(k)]
        p = [[p[r][j] / max(cols[j], 1e-10) for j in range(k)] for r in range(k)]
        p = [[x / max(sum(row), 1e-10) for x in row] for row in p]
        rows = [abs(sum(row) - 1) for row in p]
        cols = [abs(sum(p[r][j] for r in range(k)) - 1) for j in range(k)]
        if max(rows) < 1e-6 and max(cols) < 1e-6:
            break
    dcg = sum(sum(p[r][j] * gain[j] for j in range(k)) / math.log2(r + 2) for r in range(k))
    return -dcg / (ideal + 1e-10)


def ref_pro(lp, rf, ln, rw, dynamic_temperature=True):
    s = [a / n for a, n in zip(lp, ln)]
    terms = []
    for k in range(len(s)):
        worse = [i for i in range(len(s)) if rw[i] < rw[k]]
        if not worse:
            continue
        t = {i: (rw[k] - rw[i]) if dynamic_temperature else 1.0 for i in worse}
        t_k = max(t.values()) if dynamic_temperature else 1.0
        terms.append(-(s[k] * t_k - lse([s[k] * t_k] + [s[i] * t[i] for i in worse])))
    return sum(terms) if terms else None


def ref_raft(lp, rf, ln, rw):
    return None if tied(rw) else -lp[0] / ln[0]


PLAIN = {
    "infonca": ref_infonca,
    "nca": ref_nca,
    "approxndcg": ref_approxndcg,
    "neuralndcg": ref_neuralndcg,
    "pro": ref_pro,
    "raft": ref_raft,
    "pairwise": ref_pairwise,
    "contrastive": ref_contrastive,
    "lambdarank": ref_lambdarank,
    "listmle": ref_listmle,
    "lipo": ref_lipo,
    "ipo": ref_ipo,
    "simpo": ref_simpo,
    "slic": ref_slic,
    "rrhf": ref_rrhf,
    "cpo": ref_cpo,
    "rdpo": ref_rdpo,
}
HPARAMS = {  # non-default values, so a hyperparameter that is ignored makes the test fail
    "pairwise": {"beta": 0.3},
    "contrastive": {"beta": 0.2},
    "lambdarank": {"beta": 0.2},
    "listmle": {"beta": 0.25},
    "listmle_erased": {"beta": 0.25},  # the loss is listmle's; the erasing is the ranker's (test_collaborators)
    "lipo": {"beta": 0.15},
    "ipo": {"beta": 0.5},
    "simpo": {"beta": 2.5, "gamma": 0.7},
    "slic": {"delta": 2.0, "reg_weight": 0.3},
    "rrhf": {"ft_weight": 0.5},
    "cpo": {"beta": 0.2, "nll_weight": 0.7},
    "rdpo": {"beta": 0.2, "alpha": 0.05},
    "kto": {"beta": 0.2, "desirable_weight": 1.5},
    "infonca": {"beta": 0.2, "alpha": 0.7},
    "nca": {"beta": 0.3, "alpha": 0.5},
    "approxndcg": {"beta": 0.2, "alpha": 2.0},
    "neuralndcg": {"beta": 0.25, "temperature": 0.8},
    "pro": {"dynamic_temperature": True},
    "raft": {},
    "grpo": {"loss_type": "grpo"},  # against plain formulas in test_policy_gradient.py
    "rloo": {"epsilon": 0.1},
}
TOLERANCE = {"neuralndcg": 1e-6}  # Sinkhorn stops on a tolerance over the whole batch, the plain loop per list


def test_every_shipped_objective_is_tested():
    assert set(HPARAMS) == set(OPTIONS)


@pytest.mark.parametrize("name", sorted(PLAIN))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_objective_matches_plain_formula(name, seed):
    batch = random_batch(seed)
    loss = objectives.build(name, sft_weight=0.0, **HPARAMS[name])(*batch[:3], lengths=batch[3], rewards=batch[4])
    expected = mean([PLAIN[name](*row, **HPARAMS[name]) for row in rows(*batch)])
    assert math.isfinite(float(loss))
    tol = TOLERANCE.get(name, 1e-9)
    assert float(loss) == pytest.approx(expected, rel=tol, abs=tol)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("positives", [1, 2, 3])
def test_contrastive_with_several_positives_matches_plain_formula(seed, positives):
    """Ragged lists of 2-5 candidates with ties (some shorter than the positives: no term)."""
    batch = random_batch(seed)
    keep = {"positives": positives, "negatives": 2}
    obj = objectives.build("contrastive", beta=0.2, sft_weight=0.0, keep=keep)
    assert obj.hparams["positives"] == positives  # bound from keep.positives
    loss = obj(*batch[:3], lengths=batch[3], rewards=batch[4])
    per_prompt = [ref_contrastive(*row, beta=0.2, positives=positives) for row in rows(*batch)]
    assert sum(x is not None for x in per_prompt) >= 2
    assert float(loss) == pytest.approx(mean(per_prompt), rel=1e-9)


def contrastive_before_45(logps, ref_logps, mask, lengths=None, rewards=None, *, beta=0.1):
    """The contrastive objective as it was before several positives (up to 80cf96c), for the exactness test."""
    from larpo.objectives.common import implicit_reward, mean_over_prompts, prefers

    g = implicit_reward(logps, ref_logps, mask, beta)
    negatives = prefers(rewards, mask)[:, 0]
    in_denominator = negatives.clone()
    in_denominator[:, 0] = True
    lse_ = torch.logsumexp(g.masked_fill(~in_denominator, float("-inf")), dim=1)
    return mean_over_prompts(lse_ - g[:, 0], negatives.any(1))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("seed", range(6))
def test_contrastive_with_one_positive_is_todays_to_the_last_digit(seed, dtype):
    logps, ref, mask, lengths, rewards = random_batch(seed, scale=0.5)
    logps, ref = logps.to(dtype), ref.to(dtype)
    for with_rewards in (True, False):
        w = rewards if with_rewards else None
        a, b = logps.clone().requires_grad_(True), logps.clone().requires_grad_(True)
        new = objectives.contrastive(a, ref, mask, lengths, w, beta=0.3)
        old = contrastive_before_45(b, ref, mask, lengths, w, beta=0.3)
        new.backward()
        old.backward()
        assert torch.equal(new, old) and torch.equal(a.grad, b.grad)


def test_a_second_positive_is_in_the_numerator_not_a_negative_nor_dropped():
    """The issue's two cases with keep.positives=2: a second positive below the top (1 positive:
    a negative) and one tied with the top (1 positive: dropped) both join the numerator."""
    g = torch.tensor([[0.5, -0.2, -1.0, -2.0], [0.5, 0.5, -1.0, -2.0]], dtype=torch.float64)
    mask = torch.ones(2, 4, dtype=torch.bool)
    rewards = torch.tensor([[1.0, 0.5, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0]], dtype=torch.float64)
    two = objectives.contrastive(g, None, mask, rewards=rewards, beta=1.0, positives=2)
    expected = [-(lse(list(row[:2])) - lse(list(row))) for row in g.tolist()]
    assert float(two) == pytest.approx(sum(expected) / 2, rel=1e-12)
    one = objectives.contrastive(g, None, mask, rewards=rewards, beta=1.0)
    first = -(0.5 - lse([0.5, -0.2, -1.0, -2.0]))  # 1 positive: the second is a negative
    second = -(0.5 - lse([0.5, -1.0, -2.0]))  # 1 positive: the tied second is in neither
    assert float(one) == pytest.approx((first + second) / 2, rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kto_matches_plain_formula(seed):
    batch = random_batch(seed)
    loss = objectives.build("kto", sft_weight=0.0, **HPARAMS["kto"])(*batch[:3], lengths=batch[3], rewards=batch[4])
    assert float(loss) == pytest.approx(ref_kto_batch(list(rows(*batch)), **HPARAMS["kto"]), rel=1e-9)


@pytest.mark.parametrize("name", ["lambdarank", "listmle", "lipo"])
def test_normalized_variants(name):
    batch = random_batch(5)
    loss = objectives.build(name, beta=0.2, normalize=True, sft_weight=0.0)(
        *batch[:3], lengths=batch[3], rewards=batch[4]
    )
    expected = mean([PLAIN[name](*row, beta=0.2, normalize=True) for row in rows(*batch)])
    assert float(loss) == pytest.approx(expected, rel=1e-9)


def test_without_rewards_the_order_is_a_strict_ranking():
    logps, ref, mask, lengths, _ = random_batch(3)
    positions = -torch.arange(mask.shape[1], dtype=torch.float64).expand(mask.shape)
    for name in ["listmle", "lambdarank", "contrastive", "pairwise"]:
        obj = objectives.build(name, sft_weight=0.0)
        assert float(obj(logps, ref, mask)) == pytest.approx(float(obj(logps, ref, mask, rewards=positions)))


def test_all_tied_lists_give_zero_loss_with_a_graph():
    logps = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    mask = torch.ones(3, 4, dtype=torch.bool)
    rewards = torch.ones(3, 4, dtype=torch.float64)
    for name in OPTIONS:
        loss = objectives.build(name, sft_weight=0.0)(logps, logps.detach() * 0.5, mask, torch.ones(3, 4), rewards)
        assert float(loss) == 0.0, name
        loss.backward()  # still differentiable, gradient all zero
        assert torch.all(logps.grad == 0)


def test_sft_weight_adds_length_normalised_nll_of_the_top_candidate():
    logps, ref, mask, lengths, rewards = random_batch(4)
    base = objectives.build("listmle", beta=0.1, sft_weight=0.0)(logps, ref, mask, lengths, rewards)
    with_sft = objectives.build("listmle", beta=0.1, sft_weight=0.5)(logps, ref, mask, lengths, rewards)
    nll = sum(-float(logps[b, 0]) / int(lengths[b, 0]) for b in range(mask.shape[0])) / mask.shape[0]
    assert float(with_sft - base) == pytest.approx(0.5 * nll, rel=1e-9)


@pytest.mark.parametrize("name", ["pairwise", "contrastive", "lambdarank", "listmle", "lipo"])
def test_stable_in_float32_for_implicit_rewards_of_magnitude_100(name):
    logps = torch.tensor([[1000.0, -1000.0, 500.0, 0.0], [-1000.0, 1000.0, 0.0, 0.0]])
    mask = torch.tensor([[True, True, True, True], [True, True, True, False]])
    logps.requires_grad_(True)
    loss = objectives.build(name, beta=0.1, sft_weight=0.0)(logps, torch.zeros_like(logps), mask)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logps.grad).all()
    exact = objectives.build(name, beta=0.1, sft_weight=0.0)(
        logps.double(), torch.zeros(2, 4, dtype=torch.float64), mask
    )
    assert float(loss) == pytest.approx(float(exact), rel=1e-6)
    assert float(loss) > 40  # the second list is ordered against its ranking: a large loss


def test_gradient_of_listmle_matches_finite_differences():
    logps, ref, mask, lengths, rewards = random_batch(7, batch=3, m=4, scale=0.2)
    logps = torch.where(mask, logps, torch.zeros_like(logps)).requires_grad_(True)
    ref = torch.where(mask, ref, torch.zeros_like(ref))
    fn = objectives.build("listmle", beta=0.5, sft_weight=0.3)
    assert torch.autograd.gradcheck(lambda x: fn(x, ref, mask, lengths, rewards), (logps,))


def test_unknown_names_list_the_known_ones():
    with pytest.raises(ValueError, match="unknown objective 'listnet'.*contrastive.*listmle.*pairwise"):
        objectives.build("listnet")
    with pytest.raises(ValueError, match="unexpected keyword argument 'temperature'.*hyperparameters are"):
        objectives.build("pairwise", temperature=2.0)


def test_build_composes_the_option_with_the_config_defaults():
    obj = objectives.build("listmle")
    assert obj.fn.func is objectives.listmle
    assert obj.hparams == {"beta": 0.1, "normalize": False}  # beta interpolates the top-level knob
    assert (obj.sft_weight, obj.needs_reference, obj.needs_lengths) == (1.0, True, False)
    assert objectives.build("simpo").needs_reference is False


def test_missing_reference_or_lengths_is_a_clear_error():
    logps, mask = torch.zeros(1, 2), torch.ones(1, 2, dtype=torch.bool)
    with pytest.raises(ValueError, match="needs reference"):
        objectives.build("listmle", sft_weight=0.0)(logps, None, mask)
    with pytest.raises(ValueError, match="needs response lengths"):
        objectives.build("simpo", sft_weight=0.0)(logps, None, mask)
    assert torch.isfinite(objectives.build("cpo")(logps, None, mask))  # reference-free


# --- the listwise family: stability, gradients, gains, and allRank as a peer ------------------------

FAMILY = ["infonca", "nca", "approxndcg", "neuralndcg", "pro", "raft"]


@pytest.mark.parametrize("name", FAMILY)
def test_family_is_stable_in_float32_for_implicit_rewards_of_magnitude_100(name):
    logps = torch.tensor([[1000.0, -1000.0, 500.0, 0.0], [-1000.0, 1000.0, 0.0, 0.0]], requires_grad=True)
    mask = torch.tensor([[True, True, True, True], [True, True, True, False]])
    rewards = torch.tensor([[2.0, 1.0, 1.0, 0.0], [1.0, 0.5, 0.0, 0.0]])
    lengths = torch.tensor([[3, 5, 2, 4], [2, 2, 3, 1]])
    fn = objectives.build(name, sft_weight=0.0)
    loss = fn(logps, torch.zeros_like(logps), mask, lengths, rewards)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logps.grad).all()
    exact = fn(logps.double(), torch.zeros(2, 4, dtype=torch.float64), mask, lengths, rewards.double())
    assert float(loss) == pytest.approx(float(exact), rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("name", FAMILY)
def test_family_gradients_match_finite_differences(name):
    logps, ref, mask, lengths, rewards = random_batch(11, batch=3, m=4, scale=0.2)
    logps = torch.where(mask, logps, torch.zeros_like(logps)).requires_grad_(True)
    ref = torch.where(mask, ref, torch.zeros_like(ref))
    fn = objectives.build(name, sft_weight=0.0)
    assert torch.autograd.gradcheck(lambda x: fn(x, ref, mask, lengths, rewards), (logps,))


@pytest.mark.parametrize("name", ["approxndcg", "neuralndcg"])
def test_negative_reward_model_scores_shift_or_clamp(name):
    """A real reward model scores in logits, often all negative: `shift` keeps their order as gains,
    `clamp` (allRank's choice) turns an all-negative list into zero gains and no term."""
    logps, ref, mask, lengths, _ = random_batch(4)
    negative = -3.0 - torch.arange(mask.shape[1], dtype=torch.float64).expand(mask.shape).clone()
    shifted = objectives.build(name, gains="shift", sft_weight=0.0)(logps, ref, mask, lengths, negative)
    expected = mean([PLAIN[name](*row, gains="shift") for row in rows(logps, ref, mask, lengths, negative)])
    assert float(shifted) == pytest.approx(expected, rel=TOLERANCE.get(name, 1e-9)) and float(shifted) < 0
    up = objectives.build(name, gains="shift", sft_weight=0.0)(logps, ref, mask, lengths, negative + 3.0)
    assert float(up) == pytest.approx(float(shifted), rel=1e-9)  # invariant to a shift of every score
    clamped = objectives.build(name, gains="clamp", sft_weight=0.0)(logps, ref, mask, lengths, negative)
    assert float(clamped) == 0.0


def test_nca_with_two_candidates_and_a_sharp_target_is_the_pairwise_nca():
    """alpha -> 0: -log sigma(g_w) - 1/2 log sigma(-g_w) - 1/2 log sigma(-g_l) (the NCA paper's pair form)."""
    logps = torch.tensor([[-3.0, -7.0]], dtype=torch.float64)
    ref = torch.tensor([[-4.0, -5.0]], dtype=torch.float64)
    mask, rewards = torch.ones(1, 2, dtype=torch.bool), torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    loss = objectives.build("nca", beta=0.5, alpha=1e-3, sft_weight=0.0)(logps, ref, mask, rewards=rewards)
    g_w, g_l = 0.5 * 1.0, 0.5 * -2.0
    assert float(loss) == pytest.approx(-logsig(g_w) - 0.5 * logsig(-g_w) - 0.5 * logsig(-g_l), rel=1e-12)


def test_pro_without_dynamic_temperature_is_plackett_luce_over_normalised_logps():
    logps, ref, mask, lengths, rewards = random_batch(6)
    loss = objectives.build("pro", dynamic_temperature=False, sft_weight=0.0)(logps, None, mask, lengths, rewards)
    expected = mean(
        [
            ref_listmle([a / n for a, n in zip(lp, ln)], [0.0] * len(lp), ln, rw, beta=1.0)
            for lp, _, ln, rw in rows(logps, ref, mask, lengths, rewards)
        ]
    )
    assert float(loss) == pytest.approx(expected, rel=1e-9)


@pytest.fixture(scope="module")
def allrank(tmp_path_factory):
    """allRank's own loss functions (see helpers.allrank)."""
    from helpers.allrank import allrank_losses

    with allrank_losses(tmp_path_factory.mktemp("allrank")) as losses:
        yield losses


def peer_batch(seed: int):
    """float32 scores, ragged lists padded with allRank's -1 label, non-negative graded labels
    (ties included), every list with a strict preference so each carries a term in both."""
    g = torch.Generator().manual_seed(seed)
    logps = -torch.rand(5, 6, generator=g) * 40
    ref = -torch.rand(5, 6, generator=g) * 40
    labels = torch.randint(0, 4, (5, 6), generator=g).float()
    labels[:, 0] = 3.0
    labels = labels.sort(dim=1, descending=True).values  # best first, as larpo's lists
    mask = torch.ones(5, 6, dtype=torch.bool)
    for b, n in enumerate([6, 2, 4, 5, 3]):
        mask[b, n:] = False
        labels[b, n - 1] = 0.0  # no list is all tied (larpo drops those; allRank would average them in)
    return logps, ref, mask, labels


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_infonca_at_alpha_1_is_allranks_listnet(allrank, seed):
    logps, ref, mask, labels = peer_batch(seed)
    ours = objectives.build("infonca", beta=0.1, alpha=1.0, sft_weight=0.0)(logps, ref, mask, rewards=labels)
    theirs = allrank["listNet"](0.1 * (logps - ref), labels.masked_fill(~mask, -1.0))
    assert float(ours) == pytest.approx(float(theirs), rel=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("alpha", [1.0, 2.5])
def test_approxndcg_is_allranks_approxndcg(allrank, seed, alpha):
    logps, ref, mask, labels = peer_batch(seed)
    fn = objectives.build("approxndcg", beta=0.1, alpha=alpha, gains="clamp", sft_weight=0.0)
    ours = fn(logps, ref, mask, rewards=labels)
    theirs = allrank["approxNDCGLoss"](0.1 * (logps - ref), labels.masked_fill(~mask, -1.0), alpha=alpha)
    assert float(ours) == pytest.approx(float(theirs), rel=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_neuralndcg_is_allranks_neuralndcg(allrank, seed):
    logps, ref, mask, labels = peer_batch(seed)
    ours = objectives.build("neuralndcg", beta=0.1, gains="clamp", sft_weight=0.0)(logps, ref, mask, rewards=labels)
    theirs = allrank["neuralNDCG"](0.1 * (logps - ref), labels.masked_fill(~mask, -1.0))
    assert float(ours) == pytest.approx(float(theirs), rel=1e-5)


def test_sinkhorn_gradients_stay_finite_with_padding_through_every_iteration():
    """Regression: with padding multiplied out instead of masked, a zero column sum divided the
    gradient by the 1e-10 clamp on every iteration until it overflowed to inf, and inf * 0 = NaN
    (a real neuralndcg run diverged at step 2). 50 iterations, float32, two padded lists."""
    from larpo.objectives.listwise import _neural_sort, _sinkhorn

    mask = torch.tensor([[True, True, True, True], [True, True, False, False], [True, True, True, False]])
    s = torch.tensor([[0.3, -0.2, 0.1, 0.05], [0.2, -0.1, 0.0, 0.0], [-0.3, 0.18, 0.02, 0.0]], requires_grad=True)
    p = _sinkhorn(_neural_sort(s, mask, 1.0), mask, tol=0.0, max_iter=50)
    (p * torch.randn_like(p)).sum().backward()
    assert torch.isfinite(s.grad).all()
    assert torch.allclose(p.sum(2)[mask], torch.ones(int(mask.sum())), atol=1e-5)
