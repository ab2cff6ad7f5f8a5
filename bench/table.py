"""The one table of ``make bench``: each figure beside its baseline from the same run.

A benchmark script builds :class:`Figure` rows and hands them to :func:`report`, which prints
them and, when ``BENCH_RESULTS`` names a file (``make bench`` sets it), appends them there as
JSON lines. ``python bench/table.py FILE`` then prints every script's rows as one table and
exits with status 1 when a bar does not hold.

A figure is compared with its baseline as ``value / baseline``. ``higher`` says which way is
better, so a bar reads the same for throughput (``ratio >= 0.9``) and latency
(``ratio <= 1.3``).

A bar the run's own figures show out of reach on this machine carries ``known_to_fail``: why,
in words (as pytest's ``xfail`` carries its reason). It is still measured and printed, its verdict
reads "FAILS, known", the table lists it with its reason, and it alone does not fail the run:
a bar that always fails would teach everyone to ignore the table.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    higher: bool = True  # whether a larger value is better
    bar: float | None = None  # the ratio the value must reach (>= when higher, else <=)
    note: str = ""
    known_to_fail: str = ""  # why this bar cannot hold here; empty for every ordinary bar

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.value / self.baseline

    @property
    def holds(self) -> bool | None:
        if self.bar is None or self.ratio is None:
            return None
        return self.ratio >= self.bar if self.higher else self.ratio <= self.bar


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _bar(figure: Figure) -> str:
    if figure.bar is None:
        return ""
    return f"{'>=' if figure.higher else '<='} {figure.bar:g}x"


def lines(figures: list[Figure]) -> list[str]:
    """The figures as aligned text rows under one header."""
    header = ("figure", "value", "baseline", "ratio", "bar", "")
    rows = [header]
    for figure in figures:
        verdict = {True: "ok", False: "FAILS", None: ""}[figure.holds]
        if figure.holds is False and figure.known_to_fail:
            verdict = "FAILS, known"
        ratio = "-" if figure.ratio is None else f"{figure.ratio:.3f}x"
        baseline = (f"{_number(figure.baseline)} {figure.unit} ({figure.baseline_name})"
                    if figure.baseline is not None else figure.baseline_name or "-")
        rows.append((figure.name + (f" [{figure.note}]" if figure.note else ""),
                     f"{_number(figure.value)} {figure.unit}", baseline, ratio, _bar(figure),
                     verdict))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
            for row in rows]


def report(figures: list[Figure]) -> None:
    """Print ``figures`` and add them to the run's table file, if there is one."""
    print("\n".join(lines(figures)), flush=True)
    target = os.environ.get("BENCH_RESULTS")
    if target:
        with open(target, "a", encoding="utf-8") as out:
            for figure in figures:
                out.write(json.dumps(asdict(figure)) + "\n")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python bench/table.py RESULTS_FILE", file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8") as source:
        figures = [Figure(**json.loads(line)) for line in source if line.strip()]
    print("\n".join(lines(figures)))
    known = [figure for figure in figures if figure.holds is False and figure.known_to_fail]
    for figure in known:
        print(f"\nknown not to hold: {figure.name}: {figure.known_to_fail}")
    failing = [figure.name for figure in figures
               if figure.holds is False and not figure.known_to_fail]
    if failing:
        print(f"\n{len(failing)} bar(s) do not hold: {', '.join(failing)}")
        return 1
    held = sum(figure.holds is True for figure in figures)
    print(f"\nevery bar holds ({held} checked)" if not known else
          f"\nevery other bar holds ({held} checked; {len(known)} known not to)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
