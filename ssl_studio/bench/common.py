"""What every bench section shares: timing that holds up on a busy machine, the printed table, machine facts.

Other processes only ever add time, so a section that compares two things runs them in alternation in one process
and keeps each one's fastest round: the ratio is what the bench is for, and it survives a noisy machine far better
than either absolute figure.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import torch

import ssl_studio
from ssl_studio.core.threads import usable_cores

WIDTH = 48  # width of the name column


def sync(device: torch.device | str) -> None:
    """Wait for queued GPU work, so a clock reading covers it (CUDA runs asynchronously)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def clock(device: torch.device | str = "cpu") -> float:
    sync(device)
    return time.perf_counter()


def fastest_rounds(contestants: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Seconds of each contestant's fastest call, calling them in turn (A, B, A, B, ...) after one warm-up each."""
    best = {name: float("inf") for name in contestants}
    for r in range(rounds + 1):
        for name, fn in contestants.items():
            start = time.perf_counter()
            fn()
            if r:  # round 0 warms caches and allocators
                best[name] = min(best[name], time.perf_counter() - start)
    return best


@contextmanager
def torch_threads(n: int):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def source_root() -> str:
    """PYTHONPATH for a child process, so it imports this same checkout of ssl_studio."""
    root = str(Path(ssl_studio.__file__).resolve().parent.parent)
    return os.pathsep.join([root, os.environ["PYTHONPATH"]]) if os.environ.get("PYTHONPATH") else root


def cuda_available() -> bool:
    return torch.cuda.is_available()


def machine() -> dict:
    cpu_model = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu_model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")),
                             cpu_model)
    except OSError:
        pass
    return {
        "cpu_count": os.cpu_count(),
        "cpu_usable": usable_cores(),
        "cpu_model": cpu_model,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cuda": torch.cuda.get_device_name(0) if cuda_available() else None,
        "load_average": load_average(),
    }


def load_average() -> list[float] | None:
    """1/5/15-minute load averages: above the core count, other processes were competing for the CPU."""
    return [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None


class Table:
    """Fixed-width rows printed as they are measured (a full run takes minutes; progress should be visible)."""

    def __init__(self, out=None) -> None:
        self.out = out or sys.stdout

    def print(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def section(self, title: str) -> None:
        self.print()
        self.print(f"== {title} " + "=" * max(0, WIDTH + 30 - len(title)))

    def row(self, name: str, value: float | str | None, unit: str = "", note: str = "") -> None:
        if isinstance(value, float):
            text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
        else:
            text = "-" if value is None else str(value)
        self.print(f"{name:<{WIDTH}} {text:>10} {unit:<9} {note}".rstrip())
