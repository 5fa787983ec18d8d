"""A workspace: a folder of run folders, listed as a table and grouped by everything but the seed.

Only the runs' small files are read (core/runs.py's ``read_summary``), so hundreds of runs list in well under a
second, and a run that cannot be read is listed as damaged with the reason instead of breaking the listing.

Runs whose settings (data folder, training settings, the method's own, the augmentation recipe) are equal except the
seed form a group. A group's spread is the sample standard deviation over its seeds. The verdict compares the two
groups with the highest mean SSL kNN: the lead is shown to be real when it is larger than the sum of the two
groups' standard deviations; with a single seed in either group there is no spread to compare, so none is shown.

A run is removed from a workspace only by ``trash_run``, which moves its folder to the system trash (send2trash).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import statistics
from dataclasses import dataclass
from pathlib import Path

from send2trash import send2trash

from .atomic import write_json_atomic
from .errors import UserError
from .methods import recipe_presets
from .runs import RunError, RunFolder, RunSummary, holds_run_files, read_summary
from .spaces import run_spaces

SUMMARY = "summary.json"  # the workspace's own file, next to its run folders
METRICS = ("ssl_knn", "ssl_linear", "transfer_1pct")
TRANSFER_FRACTION = 0.01  # the transfer reading: the SSL space's linear probe with 1 % of the labels
VERDICT_METRIC = "ssl_knn"


class WorkspaceError(UserError):
    """The workspace folder cannot be listed."""


@dataclass(frozen=True)
class RunRow:
    """One run of the table; the fields a damaged run cannot give are None, and ``reason`` says why."""

    name: str
    state: str  # "finished", "cancelled", "failed" or "damaged"
    reason: str | None = None
    data: str | None = None
    method: str | None = None
    backbone: str | None = None
    recipe: str | None = None
    budget: str | None = None
    seed: int | None = None
    date: str | None = None  # ISO 8601, UTC, to the second
    seconds: float | None = None  # SSL training time
    views_per_second: float | None = None
    scores: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)  # space -> knn_top1, linear_top1
    transfer_1pct: float | None = None
    settings: dict | None = None  # every setting, flat (recipe.X, params.X), what groups compare
    note: str = ""  # the person's own, from the run folder

    def metric(self, name: str) -> float | None:
        if name == "transfer_1pct":
            return self.transfer_1pct
        space, probe = name.split("_")
        return self.scores.get(space, {}).get(f"{probe}_top1")

    def to_dict(self) -> dict:
        row = dataclasses.asdict(self)
        del row["settings"]
        return row


def list_runs(workspace: str | Path) -> list[RunRow]:
    """Every run folder directly inside ``workspace``, by name."""
    workspace = Path(workspace)
    if not workspace.is_dir():
        raise WorkspaceError(f"{workspace} is not a folder")
    try:
        folders = sorted(p for p in workspace.iterdir() if p.is_dir() and holds_run_files(p))
    except OSError as exc:
        raise WorkspaceError(f"cannot list the workspace {workspace}: {exc.strerror or exc}") from exc
    return [_row(folder) for folder in folders]


def _row(folder: Path) -> RunRow:
    try:
        note = RunFolder(folder).read_note()
    except RunError as exc:
        return RunRow(folder.name, "damaged", str(exc))
    try:
        summary = read_summary(folder)
        return _row_of(summary, *_state(summary), note)
    except (RunError, OSError) as exc:
        return RunRow(folder.name, "damaged", str(exc), note=note)


def _state(summary: RunSummary) -> tuple[str, str | None]:
    if summary.metrics.get("embeddings"):
        return "finished", None
    if summary.metrics:
        return "finished", summary.metrics.get("note")
    # Only a run that never reached its metrics has its checkpoint's header read.
    meta = RunFolder(summary.path).checkpoint_meta("ssl")
    if meta is None:
        return "failed", "no SSL checkpoint and no metrics: it stopped before training saved anything"
    if not meta.get("finished"):
        return "cancelled", f"stopped at step {meta.get('step')}; resuming continues it"
    return "failed", "training finished but the comparison did not (no metrics)"


def _row_of(summary: RunSummary, state: str, reason: str | None, note: str) -> RunRow:
    config, recipe = summary.settings.config, summary.settings.recipe
    ssl = summary.metrics.get("train", {}).get("ssl", {})
    epochs = config.epochs
    budget = f"{epochs} epoch{'s' * (epochs != 1)}" if epochs is not None else f"{config.time_budget:g} s"
    settings = {"data": str(summary.settings.data_root)}
    for key, value in config.to_dict().items():
        if key == "params":
            settings.update({f"params.{k}": v for k, v in (value or {}).items()})
        elif key != "seed":
            settings[key] = value
    settings.update({f"recipe.{k}": v for k, v in recipe.to_dict().items()})
    return RunRow(
        summary.path.name, state, reason, str(summary.settings.data_root), config.method, config.backbone,
        _recipe_name(recipe, config.method), budget, config.seed,
        datetime.datetime.fromtimestamp(summary.made, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        ssl.get("seconds"), ssl.get("views_per_second"),
        {space: {k: v for k, v in score.items() if k in ("knn_top1", "linear_top1")}
         for space, score in summary.metrics.get("embeddings", {}).items() if isinstance(score, dict)},
        _transfer_reading(summary.path), settings, note)


def _recipe_name(recipe, method: str) -> str:
    """The preset it equals, the run's own method's first (several methods share one recipe), else "custom"."""
    presets = recipe_presets()
    if presets.get(method) == recipe:
        return method
    return next((name for name, preset in presets.items() if preset == recipe), "custom")


def _transfer_reading(path: Path) -> float | None:
    run = RunFolder(path)
    transfer = run.read_transfer([space.name for space in run_spaces(run)])
    points = transfer.get("probe", {}).get("ssl", {}).get("linear", [])
    return next((p["top1"] for p in points if abs(p["fraction"] - TRANSFER_FRACTION) < 1e-9), None)


# --- groups ------------------------------------------------------------------------------------------------------


def spread(values: list[float]) -> dict:
    """Mean, sample standard deviation (None for a single value) and the values themselves."""
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else None,
            "values": list(values)}


def group_runs(rows: list[RunRow]) -> list[dict]:
    """The finished runs grouped by every setting but the seed, best mean SSL kNN first; each group's
    ``settings`` are those that differ between groups."""
    members: dict[tuple, list[RunRow]] = {}
    for row in rows:
        if row.state == "finished" and row.settings is not None:
            members.setdefault(tuple(sorted((k, repr(v)) for k, v in row.settings.items())), []).append(row)
    groups = list(members.values())
    varied = sorted({key for key in set().union(*(g[0].settings for g in groups))
                     if len({repr(g[0].settings.get(key)) for g in groups}) > 1}) if groups else []
    out = []
    for group in groups:
        group.sort(key=lambda r: (r.seed, r.name))
        metrics = {}
        for name in METRICS:
            values = [v for r in group if (v := r.metric(name)) is not None]
            if values:
                metrics[name] = spread(values)
        out.append({"settings": {key: group[0].settings[key] for key in varied if key in group[0].settings},
                    "recipe": group[0].recipe, "runs": [r.name for r in group], "metrics": metrics})
    out.sort(key=lambda g: -g["metrics"].get(VERDICT_METRIC, {}).get("mean", float("-inf")))
    return out


def verdict(groups: list[dict]) -> str:
    """One sentence: is the best group's lead in mean SSL kNN larger than the sum of the two groups' spreads?"""
    scored = [g for g in groups if VERDICT_METRIC in g["metrics"]]
    if len(scored) < 2:
        return "Fewer than two groups with an SSL kNN accuracy: nothing to compare."
    (best, next_), seeds = scored[:2], min(len(scored[0]["runs"]), len(scored[1]["runs"]))
    a, b = best["metrics"][VERDICT_METRIC], next_["metrics"][VERDICT_METRIC]
    lead = a["mean"] - b["mean"]
    who = f"{_describe(best)} leads {_describe(next_)} by {lead * 100:.1f} points of SSL kNN"
    if a["std"] is None or b["std"] is None:
        return f"No difference shown at 1 seed: {who}, and one seed has no spread to compare it with."
    band = a["std"] + b["std"]
    if lead > band:
        return f"{who}, more than the seeds' spread ({band * 100:.1f} points) at {seeds} seeds."
    return f"No difference shown at {seeds} seeds: {who}, within the seeds' spread ({band * 100:.1f} points)."


def _describe(group: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in short_settings(group).items()) or "the only settings"


def short_settings(group: dict) -> dict:
    """The settings that tell a group apart, in few words: where the method differs, its own settings go without
    saying, and a recipe that is a preset is named rather than listed (summary.json keeps every setting)."""
    settings = group["settings"]
    preset = group.get("recipe", "custom") != "custom"
    short = {key: value for key, value in settings.items()
             if not (key.startswith("params.") and "method" in settings)
             and not (key.startswith("recipe.") and preset)}
    if preset and any(key.startswith("recipe.") for key in settings) and group["recipe"] != settings.get("method"):
        short["recipe"] = group["recipe"]
    return short


def summary_of(rows: list[RunRow]) -> dict:
    """The groups of these runs and their verdict: what summary.json holds."""
    groups = group_runs(rows)
    return {"groups": groups, "verdict": verdict(groups)}


def write_summary(workspace: str | Path, summary: dict) -> bool:
    """summary.json, written only when it would change (a listing of an unchanged workspace writes nothing);
    True when written."""
    path = Path(workspace) / SUMMARY
    try:
        if json.loads(path.read_text(encoding="utf-8")) == json.loads(json.dumps(summary)):
            return False
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        pass  # none yet, or unreadable: written anew
    try:
        write_json_atomic(path, summary)
    except OSError as exc:
        raise WorkspaceError(f"cannot write {SUMMARY} in {workspace}: {exc.strerror or exc}") from exc
    return True


def summarize(workspace: str | Path) -> tuple[list[RunRow], dict]:
    """The table and the groups with their verdict; the groups are written to the workspace's summary.json."""
    rows = list_runs(workspace)
    summary = summary_of(rows)
    write_summary(workspace, summary)
    return rows, summary


# --- removing a run ----------------------------------------------------------------------------------------------


def trash_run(workspace: str | Path, name: str) -> Path:
    """Move the run folder ``name`` of ``workspace`` to the system trash, where it can be restored; a folder that
    is not one of the workspace's run folders is refused, and nothing else is ever removed."""
    folder = Path(workspace) / name
    if name in ("", ".", "..") or Path(name).name != name or not folder.is_dir() or not holds_run_files(folder):
        raise WorkspaceError(f"{folder} is not a run folder of the workspace {workspace}: nothing was moved to the "
                             "trash")
    try:
        send2trash(folder)
    except OSError as exc:
        raise WorkspaceError(f"cannot move {folder} to the trash: {exc.strerror or exc}") from exc
    return folder
