"""The Markdown tables of a report: settings, paired differences to the baseline, claims with
their verdicts, and `report.tune`'s choices."""

from __future__ import annotations

import re

from larpo.report.collect import Sweep, as_number
from larpo.report.stats import MOVED, holm, mean_ci, paired, seeds_for, verdict


def tuning_table(rows: list[dict], key: str, by: str) -> str:
    values = list(dict.fromkeys(v for row in rows for v in row["scores"]))
    if all(as_number(str(v)) is not None for v in values):  # e.g. learning rates: in increasing order
        values.sort(key=lambda v: as_number(str(v)))
    lines = [
        f"| setting | {' | '.join(f'{key}={v}' for v in values)} | chosen |",
        "|---|" + "---|" * (len(values) + 1),
    ]
    for row in rows:
        cells = [cell(row["scores"].get(v) or []) for v in values]
        lines.append(f"| {row['setting']} | {' | '.join(cells)} | {key}={row['chosen']} |")
    return f"Mean {by} ± 95% CI over seeds, per value of {key}:\n\n" + "\n".join(lines)


def joint_tuning_table(rows: list[dict], keys: list[str], by: str) -> str:
    """Several keys chosen together: per setting the chosen combination, its score, the runner-up,
    and the keys whose chosen value sits at an end of the values tried."""
    lines = [
        f"Mean {by} ± 95% CI over seeds of the best and second-best combination of {', '.join(keys)}:",
        "",
        "| setting | chosen | score | runner-up | score | chosen at an end of its grid |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        ranked = _ranked(row["scores"])
        second = ranked[1] if len(ranked) > 1 else None
        edges = ", ".join(row["edges"]) or "none"
        lines.append(
            f"| {row['setting'] or '(every job)'} | {row['chosen']} | {cell(row['scores'][row['chosen']])} "
            f"| {second or 'n/a'} | {cell(row['scores'][second]) if second else 'n/a'} | {edges} |"
        )
    return "\n".join(lines)


def choices(rows: list[dict], keys: list[str], by: str) -> dict:
    """`report.tune`'s choices as plain data (`choices.json`): per setting the chosen values, their
    score and the runner-up's, the keys at an end of their grid, and the overrides that run the
    choice again (`iteration=i` becomes `iterations=i`), e.g. on fresh seeds to confirm it."""
    out = []
    for row in rows:
        ranked = _ranked(row["scores"])
        chosen = parse_choice(keys, row["chosen"])
        out.append(
            {
                "setting": row["setting"],
                "chosen": chosen,
                "score": _score(row["scores"][row["chosen"]]),
                "runner_up": {"chosen": parse_choice(keys, ranked[1]), "score": _score(row["scores"][ranked[1]])}
                if len(ranked) > 1
                else None,
                "at_an_end": row["edges"],
                "overrides": " ".join(
                    [row["setting"]] * bool(row["setting"])
                    + [f"{'iterations' if k == 'iteration' else k}={v}" for k, v in chosen.items()]
                ),
            }
        )
    return {"tune": " ".join(keys), "tune_by": by, "settings": out}


def parse_choice(keys: list[str], value: str) -> dict[str, str]:
    """A choice's label (`1e-4` for one key, `lr=1e-4 beta=0.3` for several) as {key: value}."""
    return {keys[0]: value} if len(keys) == 1 else dict(p.split("=", 1) for p in value.split())


def _score(values: list[float]) -> dict:
    mean, half = mean_ci(values)
    return {"mean": mean, "ci95": half, "seeds": len(values)}


def _ranked(scores: dict[str, list[float]]) -> list[str]:
    """The scored values of one setting, best mean first."""
    return sorted((v for v in scores if scores[v]), key=lambda v: -mean_ci(scores[v])[0])


def _fmt(m: float, h: float | None) -> str:
    return f"{m:.3f}" if h is None else f"{m:.3f} ± {h:.3f}"


def cell(values: list[float]) -> str:
    return "n/a" if not values else _fmt(*mean_ci(values))


def sharpen_temperatures(sweep: Sweep) -> list[str]:
    """The temperatures of the sharpening-only control in the runs (`sft_T<t>_<metric>`)."""
    found = {k[5:].split("_", 1)[0] for r in sweep.runs for k in r.sft if re.match(r"sft_T[\d.]+_", k)}
    return sorted(found, key=float)


def table(sweep: Sweep, metrics: list[str]) -> str:
    lines = ["| setting | seeds | " + " | ".join(metrics) + " |", "|---|---|" + "---|" * len(metrics)]
    sft_seeds = {s for m in metrics for s in sweep.sft_by_seed(m)}
    if sft_seeds:
        cells = [cell(list(sweep.sft_by_seed(m).values())) for m in metrics]
        lines.append(f"| SFT (iteration 0) | {len(sft_seeds)} | " + " | ".join(cells) + " |")
    for t in sharpen_temperatures(sweep):  # the sharpening-only control rows
        values = [list(sweep.sft_by_seed(f"sft_T{t}_{m}").values()) for m in metrics]
        n = len({s for m in metrics for s in sweep.sft_by_seed(f"sft_T{t}_{m}")})
        lines.append(f"| SFT at T={t}, no training | {n} | " + " | ".join(cell(v) for v in values) + " |")
    for s in sweep.settings:
        cells = [cell(list(sweep.by_seed(s, m).values())) for m in metrics]
        n = len({r.seed for r in sweep.runs if r.setting == s})
        lines.append(f"| {s or '(every job)'} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paired_table(sweep: Sweep, metrics: list[str], against_sft: bool = False) -> str:
    """Per setting, mean ± 95% CI of its per-seed differences to the baseline setting, or with
    `against_sft` to each seed's starting policy (the SFT row)."""
    base = "SFT" if against_sft else sweep.baseline
    lines = [
        f"| setting − {base} | seeds | " + " | ".join(metrics) + " |",
        "|---|---|" + "---|" * len(metrics),
    ]
    against = sweep.sft_by_seed if against_sft else (lambda m: sweep.by_seed(base, m))
    for s in sweep.settings:
        if s == base:
            continue
        diffs = [paired(sweep.by_seed(s, m), against(m)) for m in metrics]
        n = max((d.n for d in diffs if d), default=0)
        cells = ["n/a" if d is None else _fmt(d.mean, d.half) for d in diffs]
        lines.append(f"| {s or '(every job)'} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


CLAIM = re.compile(r"^\s*(.+?)\s*>\s*(.+?)(?:\s+on\s+(\w+))?\s*$")  # "A > B" or "A > B on <metric>"


def _resolve(sweep: Sweep, name: str) -> str | None:
    """A claim names a setting by its full label or one of its overrides; SFT is the start policy
    (each seed's iteration 0); `trained` is the final policy of a sweep of one setting."""
    if name == "SFT":
        return "SFT"
    if name == "trained":
        return sweep.settings[0] if len(sweep.settings) == 1 else None
    return next((s for s in sweep.settings if s == name or set(name.split()) <= set(s.split())), None)


def claims(sweep: Sweep, metric: str) -> list[dict]:
    """Each claim "A > B" (in `metric`, or "A > B on <metric>"): the paired difference, the
    Holm-adjusted p-value and the verdict."""
    out = []
    for text in sweep.report.get("claims") or []:
        m = CLAIM.match(text)
        if not m:
            continue
        a, b = (_resolve(sweep, x) for x in m.groups()[:2])
        metric_of = m.group(3) or metric
        if a is None or b is None:
            out.append({"claim": text, "diff": None})
            continue
        values = {x: (sweep.sft_by_seed(metric_of) if x == "SFT" else sweep.by_seed(x, metric_of)) for x in (a, b)}
        both_moved = moved(sweep, a, metric_of) and moved(sweep, b, metric_of)
        out.append({"claim": text, "diff": paired(values[a], values[b]), "moved": both_moved})
    tested = [c for c in out if c["diff"] is not None and c["diff"].p is not None]
    for c, p in zip(tested, holm([c["diff"].p for c in tested])):
        c["p_holm"] = p
    for c in out:
        c["verdict"] = verdict(c["diff"], c.get("p_holm"), c.pop("moved", False))
    return out


def moved(sweep: Sweep, setting: str, metric: str) -> bool:
    """The setting's mean paired difference to the SFT policy is at least MOVED (SFT: never)."""
    if setting == "SFT":
        return False
    d = paired(sweep.by_seed(setting, metric), sweep.sft_by_seed(metric))
    return d is not None and abs(d.mean) >= MOVED


def claims_table(rows: list[dict], metric: str) -> str:
    lines = [
        f"| claim | paired difference in {metric} or the claim's metric (95% CI) | seeds | p (paired t) "
        "| p (Holm) | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for c in rows:
        d = c["diff"]
        if d is None:
            lines.append(f"| {c['claim']} | n/a (setting not in this sweep) | 0 | | | inconclusive |")
            continue
        p = "" if d.p is None else f"{d.p:.3g}"
        ph = "" if c.get("p_holm") is None else f"{c['p_holm']:.3g}"
        lines.append(f"| {c['claim']} | {_fmt(d.mean, d.half)} | {d.n} | {p} | {ph} | **{c['verdict']}** |")
    return "\n".join(lines)


def seeds_table(rows: list[dict], half_width: float) -> str:
    """Per claim: the observed paired SD and half-width, and the seeds a 95% half-width of
    `half_width` needs at that SD (`larpo-report --half-width`)."""
    lines = [
        f"| claim | seeds | paired SD | 95% half-width now | seeds for ±{half_width:g} |",
        "|---|---|---|---|---|",
    ]
    for c in rows:
        d = c["diff"]
        if d is None or d.sd is None:
            lines.append(f"| {c['claim']} | {d.n if d else 0} | n/a | n/a | n/a (needs 2 seeds) |")
            continue
        need = seeds_for(d.sd, half_width)
        lines.append(f"| {c['claim']} | {d.n} | {d.sd:.4f} | ±{d.half:.4f} | **{need}** |")
    return "\n".join(lines)
