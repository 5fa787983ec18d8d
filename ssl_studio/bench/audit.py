"""The audit of one space (core/audit: near-duplicates, outliers, likely wrong labels) on 10k x 256 embeddings.

The embeddings are projection's ten Gaussian clusters; the labels go round the ten classes, agreeing with nothing,
so that most images are suspects: the label pass's worst case. The time is the fastest of a few calls
(common.fastest_rounds), since other processes only ever add to it.
"""

from __future__ import annotations

import time

import numpy as np

from ssl_studio.core.audit import audit_space
from ssl_studio.core.models import SmallCNN

from .common import Table, fastest_rounds
from .projection import embeddings_like

GOAL_SECONDS = 10.0  # 10k images, 2 cores
CLASSES = 10


def measure_audit(table: Table, n_images: int, rounds: int = 2) -> dict:
    x = embeddings_like(n_images, SmallCNN().feature_dim)
    labels = np.arange(n_images) % CLASSES
    seconds = fastest_rounds({"audit": lambda: audit_space(x, labels, CLASSES)}, rounds)["audit"]
    start = time.process_time()  # CPU seconds barely change when other processes compete; wall seconds do
    found = audit_space(x, labels, CLASSES)
    cpu = time.process_time() - start
    table.row(f"audit of {n_images:,} x {x.shape[1]} (one space, labeled)", seconds, "s",
              f"{cpu:.2g} s CPU; goal <= {GOAL_SECONDS:g} s")
    return {"images": n_images, "dimensions": x.shape[1], "seconds": seconds, "cpu_seconds": cpu,
            "found": {"duplicates": len(found.duplicates), "outliers": len(found.outliers),
                      "mislabeled": len(found.mislabeled)}}
