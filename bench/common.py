"""Shared benchmark plumbing: isolated measurement (wall time + peak RSS), result rows and the
command line of a stage's scale.

Each measurement runs in a forked child so its peak resident memory is its own, not the
high-water mark of everything measured before it.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass
class Measurement:
    seconds: float
    peak_rss_mb: float  # peak resident set size of the child above its size at start
    value: Any = None   # what the function returned (small: counts, rates)


@dataclass
class BenchResult:
    stage: str
    metric: str
    ours: float
    baseline: float | None
    baseline_name: str | None
    unit: str
    goal: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        """How many times better ours is (for 'seconds' lower is better, else higher)."""
        if self.baseline is None or not self.ours:
            return None
        return self.baseline / self.ours if self.unit in ("s", "seconds", "MB") else self.ours / self.baseline


def _child(fn: Callable, args: tuple, kwargs: dict, queue) -> None:
    start_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    value = fn(*args, **kwargs)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    queue.put(Measurement(seconds, (peak - start_rss) / 1024.0, value))


def measure(fn: Callable, *args, start_method: str = "fork", **kwargs) -> Measurement:
    """Run ``fn(*args, **kwargs)`` in a child process; return its wall time, peak RSS and value.

    ``start_method="spawn"`` for work that runs torch: OpenMP thread pools do not survive a fork,
    so a forked child of a process that has touched them can deadlock. ``fn`` must then be a
    module-level function and its arguments picklable.
    """
    ctx = mp.get_context(start_method)
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(fn, args, kwargs, queue))
    proc.start()
    import queue as _queue

    while True:  # poll, so a child that dies without reporting cannot hang the parent
        try:
            result = queue.get(timeout=1.0)
            break
        except _queue.Empty:
            if not proc.is_alive():
                raise RuntimeError(f"benchmark child for {getattr(fn, '__name__', fn)} "
                                   f"exited {proc.exitcode} without a result")
    proc.join()
    return result


def format_results(results: list[BenchResult]) -> str:
    """Markdown table of results with ratios."""
    lines = ["| stage | metric | ours | baseline | ratio | goal |", "|---|---|---|---|---|---|"]
    for r in results:
        base = f"{r.baseline:.4g} {r.unit} ({r.baseline_name})" if r.baseline is not None else "-"
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else "-"
        lines.append(f"| {r.stage} | {r.metric} | {r.ours:.4g} {r.unit} | {base} | {ratio} | {r.goal} |")
    return "\n".join(lines)


def print_results(results: list[BenchResult]) -> None:
    """The results table, then each row's details (a stage module's ``main`` output)."""
    print(format_results(results))
    for r in results:
        if r.extra:
            print(f"- {r.metric}: {r.extra}")


def scale_parser(doc: str, *, days: int) -> argparse.ArgumentParser:
    """A stage module's command line, described by its docstring's first line, with the scale every
    stage takes: ``--symbols`` (500, the reference universe) and ``--days`` (``days`` by default)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--days", type=int, default=days)
    return parser
