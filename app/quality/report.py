"""What a quality run reports: the summary per method, the printed table, the results
file, and the plot with the EM history of every earlier run in the same folder."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from app.gui.quality_plot import Bar, HistoryPoint, draw
from app.quality.harness import Outcome


def summarise(outcomes: Sequence[Outcome], methods: Sequence[str]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for method in methods:
        mine = [o for o in outcomes if o.method == method]
        done = [o for o in mine if o.em is not None]
        entry: dict[str, Any] = {
            "questions": len(mine),
            "answered": len(done),
            "skipped": sum(o.status == "does_not_fit" for o in mine),
            "failed": sum(o.status in ("failed", "cancelled") for o in mine),
            "em": None,
            "contains": None,
        }
        if done:
            n = len(done)
            entry.update(
                em=round(sum(bool(o.em) for o in done) / n, 3),
                contains=round(sum(bool(o.contains) for o in done) / n, 3),
                mean_seconds=round(sum(o.seconds for o in done) / n, 2),
                mean_tokens=round(sum(o.tokens for o in done) / n),
                mean_steps=round(sum(o.steps for o in done) / n, 2),
                em_by_kind={
                    kind: round(
                        sum(bool(o.em) for o in done if o.kind == kind)
                        / sum(o.kind == kind for o in done),
                        3,
                    )
                    for kind in dict.fromkeys(o.kind for o in done)
                },
            )
        summary[method] = entry
    return summary


def table(summary: dict[str, Any], outcomes: Sequence[Outcome]) -> str:
    lines = [
        f"{'method':<14}{'answered':>9}{'EM':>7}{'contains':>10}{'s/question':>12}"
        f"{'tokens/q':>10}{'calls/q':>9}"
    ]
    for method, s in summary.items():
        if s["em"] is None:
            why = "does not fit the context" if s["skipped"] else "no answers"
            lines.append(f"{method:<14}{s['answered']:>5}/{s['questions']:<3}  {why}")
            continue
        lines.append(
            f"{method:<14}{s['answered']:>5}/{s['questions']:<3}{s['em']:>7.2f}"
            f"{s['contains']:>10.2f}{s['mean_seconds']:>12.1f}{s['mean_tokens']:>10,}"
            f"{s['mean_steps']:>9.1f}"
        )
    lines.append("")
    methods = list(summary)
    lines.append(f"{'question':<14}{'gold':<18}" + "".join(f"{m:<22}" for m in methods))
    for qid in dict.fromkeys(o.question_id for o in outcomes):
        row = [o for o in outcomes if o.question_id == qid]
        cells = []
        for m in methods:
            o = next((o for o in row if o.method == m), None)
            if o is None or o.em is None:
                cells.append(f"{'(' + (o.status if o else '-') + ')':<22}")
            else:
                mark = "=" if o.em else ("~" if o.contains else "x")
                cells.append(f"{mark} {o.predicted[:19]:<20}")
        lines.append(f"{qid + ' ' + row[0].kind:<14}{row[0].gold[:17]:<18}" + "".join(cells))
    lines.append("(= exact match, ~ gold contained in the reply, x wrong)")
    return "\n".join(lines)


def history(folder: Path) -> list[HistoryPoint]:
    """EM per method of every quality-*.json in ``folder``, oldest first."""
    runs = []
    for path in folder.glob("quality-*.json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            em = {m: s["em"] for m, s in data["summary"].items() if s.get("em") is not None}
            when = str(data.get("when", ""))
            order = (when, path.stat().st_mtime_ns)
        except (OSError, ValueError, KeyError, AttributeError):
            continue
        runs.append((order, HistoryPoint(when[5:16].replace("T", " ") or path.stem, em)))
    return [point for _, point in sorted(runs, key=lambda run: run[0])]


def plot_results(results: dict[str, Any], png: Path, folder: Path) -> Path:
    bars = []
    for method, s in results["summary"].items():
        note = "does not fit" if s["em"] is None and s["skipped"] else "no answers"
        bars.append(Bar(method, s["em"], s["contains"], note))
    c = results["config"]
    subtitle = (
        f"{results['model']['name']} · {results['document']['tokens']:,}-token document · "
        f"{c['questions']} questions · seed {c['seed']} · {results['when']}"
    )
    return draw(
        png, bars, history(folder), "Exact match per method (synthetic multi-hop QA)", subtitle
    )


def write_results(results: dict[str, Any], out: Path) -> Path:
    """The results as ``out/quality-<time>.json``, never over an earlier run's file."""
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target, n = out / f"quality-{stamp}.json", 1
    while target.exists():  # two runs in one second
        n += 1
        target = out / f"quality-{stamp}-{n}.json"
    target.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return target
