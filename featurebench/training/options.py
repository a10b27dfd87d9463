"""The command-line options both training commands share (``train`` and ``finetune``), worded once.

``--resume RUN_DIR|CHECKPOINT`` (a run folder: its latest checkpoint; a checkpoint file: that epoch)
and ``--checkpoint-every N`` (a resumable checkpoint every N epochs, default 1, and always after a
phase's last epoch and on Ctrl+C), the refusal of the old flag-only ``--resume``, and what a Ctrl+C says.
Light (no TensorFlow): the CLI imports it to check arguments before a command runs.
"""

from __future__ import annotations

from typing import Any, Sequence

import typer

from featurebench.errors import FeaturebenchError
from featurebench.training.checkpoint import CHECKPOINT_DIR, RESUME_FORM

#: ``--checkpoint-every``'s default in every training command.
CHECKPOINT_EVERY = 1


def resume_option() -> Any:
    """``--resume RUN_DIR|CHECKPOINT`` (a path; None when not given)."""
    return typer.Option(None, "--resume", metavar="RUN_DIR|CHECKPOINT",
                        help=f"Continue a run: RUN_DIR (from its latest checkpoint) or one of its checkpoint files, "
                             f"RUN_DIR/{CHECKPOINT_DIR}/epoch-NNNN-PHASE.keras (from that epoch). The run's settings "
                             "are reused: pass only what changes (e.g. --epochs N).")


def checkpoint_every_option() -> Any:
    """``--checkpoint-every N`` (None when not given: :data:`CHECKPOINT_EVERY`, or a resumed run's own)."""
    return typer.Option(None, "--checkpoint-every", min=1, metavar="N",
                        help=f"Write a resumable checkpoint every N epochs (default {CHECKPOINT_EVERY}), and always "
                             "after the last epoch of each phase and on Ctrl+C (the last finished epoch, held in "
                             "memory).")


def check_resume_argument(command: str, args: Sequence[str]) -> None:
    """Refuse, in one line naming the new form, a ``--resume`` given without its path (the old flag:
    ``finetune ... --resume``), before the parser takes the next option for the path."""
    for i, arg in enumerate(args):
        if arg == "--":
            return
        if arg == "--resume" and (i + 1 == len(args) or args[i + 1].startswith("-")):
            raise FeaturebenchError(f"--resume takes the run to continue: featurebench {command} SOURCE "
                                    f"{RESUME_FORM}.")


def say_interrupted(console: Any, command: str, source: Any, stop: Any, more: str = "") -> None:
    """Tell what a Ctrl+C (``stop``: a :class:`featurebench.training.session.TrainingInterrupted`) left,
    and the command that continues it (``more``: optional flags to show, e.g. `` [--lr NEW]``)."""
    if stop.checkpoint is None:
        left = "no run folder is left; run the same command again to start" if stop.run_dir is None else \
            f"{stop.run_dir} has no checkpoint to resume; start over with --force"
        console.print(f"[yellow]Interrupted[/] before the first checkpoint: {left}.", soft_wrap=True,
                      highlight=False)
        return
    console.print(f"[yellow]Interrupted[/] after epoch {stop.epochs_done} (the epoch in progress is lost). "
                  f"Checkpoint: {stop.checkpoint}", soft_wrap=True, highlight=False)
    console.print(f"Continue with: featurebench {command} {source} --resume {stop.run_dir}{more}", soft_wrap=True,
                  highlight=False, markup=False)


__all__ = ["CHECKPOINT_EVERY", "check_resume_argument", "checkpoint_every_option", "resume_option",
           "say_interrupted"]
