"""The training monitor: per-epoch history as JSON and a loss/accuracy plot as PNG (matplotlib Agg).

Rewritten after every epoch (the classic TrainingMonitor), so a long run can be
watched while it trains. A dashed line marks where fine-tuning starts.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

HISTORY_FILE = "history.json"
MONITOR_FILE = "monitor.png"


def save_history(history: list[dict], path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(history, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def plot_history(history: list[dict], path: Path, title: str = "", finetune_start: int | None = None) -> None:
    """Loss (left axis) and accuracy (right axis) per epoch, train solid, validation dashed."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    epochs = [row["epoch"] + 1 for row in history]
    fig = Figure(figsize=(8, 5), dpi=100)
    ax = fig.add_subplot()
    acc_ax = ax.twinx()
    for key, axis, style, color in (("loss", ax, "-", "tab:red"), ("val_loss", ax, "--", "tab:red"),
                                    ("accuracy", acc_ax, "-", "tab:blue"), ("val_accuracy", acc_ax, "--", "tab:blue")):
        points = [(e, row[key]) for e, row in zip(epochs, history) if row.get(key) is not None]
        if points:
            axis.plot(*zip(*points), style, color=color, label=key, marker="." if len(points) < 30 else None)
    if finetune_start:
        ax.axvline(finetune_start + 0.5, color="gray", linestyle=":", label="fine-tuning starts")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    acc_ax.set_ylabel("accuracy")
    acc_ax.set_ylim(0, 1.02)
    handles = [h for axis in (ax, acc_ax) for h in axis.get_legend_handles_labels()[0]]
    if handles:
        ax.legend(handles=handles, loc="center right", fontsize="small")
    ax.set_title(title or "training monitor")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp)
    os.replace(tmp, path)


__all__ = ["HISTORY_FILE", "MONITOR_FILE", "plot_history", "save_history"]
