"""Print a ``make bench`` results file as Markdown (for ``bench/README.md``)::

    .venv/bin/python bench/report.py bench/results/<timestamp>.json

One table row per figure: median, min–max of the repetitions, the 1-minute load average at the
end of each repetition, the ratio to its reference and the goal's verdict; then RSS per process,
throughput per CPU-second, and the EXPLAIN summary.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def markdown(result: dict[str, Any]) -> str:
    """The Markdown of one results document (the JSON ``run.py`` writes)."""
    figures, goals = result["figures"], result["goals"]
    before = result["load_average_before"]
    lines = [
        f"Run of {result['started'][:16].replace('T', ' ')} UTC, {result['cpus']} CPUs, "
        f"{result['seconds']:.0f} s; 1-minute load average {before[0]:.2f} before the run "
        f"(the benchmark's own processes add 2–4 while it runs).",
        "",
        "| figure | median | min–max | unit | load (1 min) | reference | ratio | × DRF | goal |",
        "|---|---:|---:|---|---|---|---:|---:|---|",
    ]
    for key, fig in figures.items():
        if fig["median"] is None:
            continue
        verdict = goals.get(key, {})
        reference = figures.get(fig["reference"] or "", {}).get("title", "")
        reference = reference.split(" (")[0]
        ratio = f"{verdict['ratio']:.2f}" if "ratio" in verdict else ""
        multiple = f"{verdict['peer_multiple']:.2f}" if "peer_multiple" in verdict else ""
        goal = " and ".join(_goal_texts(fig, verdict))
        loads = ", ".join(f"{x:.1f}" for x in fig.get("load_1m", []))
        lines.append(
            f"| {fig['title']} | {fig['median']:,.1f} | {fig['min']:,.1f}–{fig['max']:,.1f} "
            f"| {fig['unit']} | {loads} | {reference} | {ratio} | {multiple} | {goal} |"
        )
    rss = figures.get("rss_max_mb", {}).get("details", [{}])[0].get("processes", [])
    if rss:
        lines += [
            "",
            "RSS after the run (MiB): "
            + ", ".join(f"{p['service']} {p['rss_mb']:.0f}" for p in rss)
            + ".",
        ]
    capacity = result.get("capacity_per_cpu_s", {})
    if capacity:
        lines += [
            "",
            "Per CPU-second of the service's processes: "
            + "; ".join(f"{name} {value:,.0f}" for name, value in capacity.items())
            + ".",
        ]
    explain = result.get("notes", {}).get("explain", {})
    if explain:
        lines += ["", "EXPLAIN (ANALYZE) of the API's list statements:", ""]
        for name, plan in explain.items():
            scans = "index scans only" if plan["index_scans_only"] else "not only index scans"
            lines.append(
                f"- {name}: {scans}, {plan['rows_removed_by_filter']:,} rows removed by filter, "
                f"{plan['execution_ms']:.1f} ms"
            )
    invalid = result.get("invalid", [])
    if invalid:
        lines += ["", *(f"**Invalid:** {problem}" for problem in invalid)]
    return "\n".join(lines)


def _goal_texts(fig: dict[str, Any], verdict: dict[str, Any]) -> list[str]:
    """The goal cells of one figure: on the reference ratio (``>= r``, ``<= r x``) or the
    value, and on the multiple of the DRF peer."""
    texts = []
    if fig["goal"]:
        op, threshold = fig["goal"].split()[:2]
        on_ratio = op == ">=" or fig["goal"].endswith(" x")
        text = f"{op} {threshold}" + (" × ref" if on_ratio else f" {fig['unit']}")
        texts.append(text + (" — **met**" if verdict.get("met") else " — **not met**"))
    if "peer_met" in verdict:
        texts.append(
            f"{verdict['peer_goal']} × DRF"
            + (" — **met**" if verdict["peer_met"] else " — **not met**")
        )
    return texts


if __name__ == "__main__":
    print(markdown(json.loads(Path(sys.argv[1]).read_text())))
