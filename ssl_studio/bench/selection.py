"""Which images to label: each label-free strategy of core/label_selection timed on 10k embeddings, budget 100.

The embeddings are ten Gaussian clusters of the small CNN's width (256), as the projection section uses; the time is
the fastest of a few calls in turn (common.fastest_rounds), since other processes only ever add to it.
"""

from __future__ import annotations

import time

from ssl_studio.core.label_selection import STRATEGIES, select
from ssl_studio.core.models import SmallCNN

from .common import Table, fastest_rounds
from .projection import embeddings_like

GOAL_SECONDS = 5.0  # 10k images, a budget of 100, 2 cores


def measure_selection(table: Table, n_images: int, budget: int, rounds: int = 2) -> dict:
    x = embeddings_like(n_images, SmallCNN().feature_dim)
    seconds = fastest_rounds({s: lambda s=s: select(x, budget, s) for s in STRATEGIES}, rounds)
    cpu = {}
    for strategy in STRATEGIES:  # CPU seconds barely change when other processes compete; wall seconds do
        start = time.process_time()
        select(x, budget, strategy)
        cpu[strategy] = time.process_time() - start
        table.row(f"select {budget} of {n_images:,} ({strategy})", seconds[strategy], "s",
                  f"{cpu[strategy]:.2g} s CPU; goal <= {GOAL_SECONDS:g} s")
    return {"images": n_images, "budget": budget, "seconds": seconds, "cpu_seconds": cpu}
