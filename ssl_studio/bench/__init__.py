"""Benchmarks of SSL Studio beside its alternatives (`python -m ssl_studio.bench`; see BENCHMARKS.md).

One module per section of the table: ingest, augment, training, projection, ui, transfer, quality; runner puts
them together.
"""
