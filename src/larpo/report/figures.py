"""The figures of a report: the final metrics per setting (bars, or lines against `report.x`),
and the per-iteration history."""

from __future__ import annotations

import statistics
from pathlib import Path

from larpo.report.collect import HISTORY, METRICS, Sweep, as_number, parse_setting
from larpo.report.stats import mean_ci

PLOTTED = ["win_rate_vs_sft", "accuracy_sampled", "accuracy_greedy"]


def history_figure(sweep: Sweep, out: Path) -> Path | None:
    """history.png: greedy and sampled accuracy, win rate, and where evaluated the share of answers
    cut at the token cap and their length, per iteration, mean over seeds with
    its 95% confidence band (Student t; none for one seed). Runs evaluated at the start and the
    end only draw those two points: the gain per objective, with its band."""
    if not any(len(r.history) >= 2 for r in sweep.runs):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = HISTORY + [
        m for m in ("truncated", "response_tokens") if any(m in h for r in sweep.runs for h in r.history)
    ]
    fig, axes = plt.subplots(1, len(shown), figsize=(5.2 * len(shown), 4.4), squeeze=False)
    for ax, metric in zip(axes[0], shown):
        for setting in sweep.settings:
            by_iteration: dict[int, list[float]] = {}
            for r in sweep.runs:
                if r.setting == setting:
                    for h in r.history:
                        if metric in h:
                            by_iteration.setdefault(int(h["iteration"]), []).append(h[metric])
            its = sorted(by_iteration)
            means = [statistics.fmean(by_iteration[i]) for i in its]
            (line,) = ax.plot(its, means, marker="o", label=setting or "runs")
            halves = [mean_ci(by_iteration[i])[1] for i in its]  # None with one seed: no band
            if all(h is not None for h in halves):
                lo, hi = [m - h for m, h in zip(means, halves)], [m + h for m, h in zip(means, halves)]
                ax.fill_between(its, lo, hi, color=line.get_color(), alpha=0.15, linewidth=0)
        ax.set_xticks(sorted({int(h["iteration"]) for r in sweep.runs for h in r.history}))
        ax.set_title(metric)
        ax.set_xlabel("iteration (0: SFT policy)")
        ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), fontsize=8, frameon=False)
    fig.suptitle(
        f"{sweep.name + ': ' if sweep.name else ''}per iteration, mean and 95% CI over {len(sweep.seeds)} seed(s)"
    )
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def series(sweep: Sweep, metric: str) -> dict[str, list[tuple[str, float, float | None]]]:
    """{series label: [(x label, mean, ci)]}. The x axis is `report.x` (or the first override);
    the other overrides name the series."""
    x, order = sweep.report.get("x"), sweep.report.get("order")
    points: dict[str, list] = {}
    for setting in sweep.settings:
        values = list(sweep.by_seed(setting, metric).values())
        if not values:
            continue
        parts = parse_setting(setting)
        key = x if x in parts else next(iter(parts), None)
        xval = parts.pop(key, setting) if key else (setting or "all runs")
        label = " ".join(f"{k}={v}" for k, v in parts.items()) or (f"{key} (x axis)" if key else "runs")
        points.setdefault(label, []).append((xval, *mean_ci(values)))
    rank = {str(v): i for i, v in enumerate(order or [])}
    for pts in points.values():
        if rank:
            pts.sort(key=lambda p: rank.get(p[0], len(rank)))
        elif all(as_number(p[0]) is not None for p in pts):
            pts.sort(key=lambda p: as_number(p[0]))
    return points


def plotted(sweep: Sweep) -> list[str]:
    """The metrics that get a panel: the claims' metric (`report.metric`) first, so the figure shows
    what the verdicts are about, then the usual three; each only where it has values."""
    wanted = dict.fromkeys([sweep.report.get("metric") or PLOTTED[0], *PLOTTED])
    return [m for m in wanted if any(sweep.by_seed(s, m) for s in sweep.settings)]


def figure(sweep: Sweep, out: Path) -> Path | None:
    """results.png: one panel per plotted metric that has values; points with 95% error bars
    (no truncated bars), proportions' intervals clipped to [0, 1], the SFT level as a line."""
    panels = plotted(sweep)
    if not panels:
        return None
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    line = sweep.report.get("figure") == "line"
    n_x = max(len(p) for p in series(sweep, panels[0]).values())
    width = max(4.5, min(9.0, 0.55 * n_x + 2))
    fig, axes = plt.subplots(1, len(panels), figsize=(width * len(panels), 4.6), squeeze=False)
    for ax, metric in zip(axes[0], panels):
        panel(ax, sweep, metric, line)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), fontsize=8, frameon=False)
    n = len(sweep.seeds)
    fig.suptitle(f"{sweep.name or out.parent.name}: mean" + (f" and 95% CI over {n} seeds" if n > 1 else " (1 seed)"))
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def panel(ax, sweep: Sweep, metric: str, line: bool) -> None:
    """One metric's panel: each setting's mean with its 95% interval, the SFT level as a line."""
    points = series(sweep, metric)
    offsets = [(i - (len(points) - 1) / 2) * 0.12 for i in range(len(points))]
    ticks: list[str] = []
    for (label, pts), dx in zip(points.items(), offsets):
        for xval, _, _ in pts:
            if xval not in ticks:
                ticks.append(xval)
        pos = [ticks.index(p[0]) + dx for p in pts]
        means = [p[1] for p in pts]
        lo = [p[1] - (p[2] or 0.0) for p in pts]
        hi = [p[1] + (p[2] or 0.0) for p in pts]
        if metric in METRICS:
            lo, hi = [max(0.0, v) for v in lo], [min(1.0, v) for v in hi]
        yerr = [[m - a for m, a in zip(means, lo)], [b - m for m, b in zip(means, hi)]]
        ax.errorbar(pos, means, yerr=yerr, marker="o", capsize=4, linestyle="-" if line else "none", label=label)
    sft = list(sweep.sft_by_seed(metric).values())
    if sft:
        ax.axhline(statistics.fmean(sft), color="grey", linestyle="--", linewidth=1, label="SFT policy")
    ax.set_xticks(range(len(ticks)), ticks, rotation=25 if not line else 0, ha="right" if not line else "center")
    lows = [v for pts in points.values() for p in pts for v in (p[1] - (p[2] or 0),)] + sft
    highs = [v for pts in points.values() for p in pts for v in (p[1] + (p[2] or 0),)] + sft
    pad = max(0.02, 0.1 * (max(highs) - min(lows)))
    low, high = min(lows) - pad, max(highs) + pad
    if metric in METRICS:
        low, high = max(0.0, low), min(1.0, high)
    ax.set_ylim(low, high)
    ax.set_title(metric)
    ax.set_xlabel(sweep.report.get("x") or "setting")
    ax.grid(axis="y", alpha=0.3)
