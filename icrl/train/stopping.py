"""Stopping a run at a safe point: SIGTERM and SIGINT set a flag that the training loop reads between
updates (`GracefulStop`), and `Trainer.run` then raises `TrainingStopped` after its checkpoint; the other
ways a run stops, and their one-line errors."""

from __future__ import annotations

import errno
import signal
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def describe_os_error(exc: BaseException) -> str:
    """An OSError's reason with its errno name ("No space left on device (ENOSPC)"), else its message."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"{exc.strerror or exc} ({errno.errorcode.get(exc.errno, exc.errno)})"
    return str(exc)


class TrainingStopped(Exception):
    """`Trainer.run` stopped early on a signal (SIGTERM, SIGINT), after checkpointing where it was."""

    def __init__(self, signum: int, run_dir: Path, env_steps: int, updates: int) -> None:
        self.signum, self.run_dir, self.env_steps, self.updates = signum, run_dir, env_steps, updates
        super().__init__(
            f"stopped by {signal.Signals(signum).name} at env_steps={env_steps} updates={updates}; "
            f"checkpoint written, continue with `icrl resume {run_dir}`"
        )


class NonFiniteError(RuntimeError):
    """`Trainer.run` stopped because its env keeps producing NaN or inf data, or its updates keep being
    non-finite (and are skipped), after checkpointing the last good weights (`checkpoint`, None when none
    could be written). The message is one line: what went wrong, where the weights are, what to do."""

    def __init__(self, problem: str, advice: str, checkpoint: Path | None = None, updates: int = 0) -> None:
        self.problem, self.advice, self.checkpoint = problem, advice, checkpoint
        saved = (
            f"the last good weights (updates={updates}) are in {checkpoint}"
            if checkpoint is not None
            else "no checkpoint was written"
        )
        super().__init__(f"{problem}; stopped, {saved}; {advice}")


class EvaluationStopped(Exception):
    """An evaluation was cut short by a stop request (`should_stop` of `play_trials`); its partial result
    is dropped."""


class RunFinished(Exception):
    """`icrl resume` of a run that already finished (its budget spent, or its target return reached): nothing
    to do, and nothing was touched. The message is one line and says how to train on."""


# The errors of a write that cannot succeed as things are: a full disk or quota, a read-only file system,
# a folder the run may not write, a file too large. Training stops with a checkpoint and a one-line message.
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG})


class RunWriteError(RuntimeError):
    """Training stopped because a file of the run could not be written (a full disk, a read-only or
    forbidden folder), after trying to checkpoint. The message is one line: the file, the cause, whether
    the checkpoint was written, what to do."""


class GracefulStop:
    """While active, SIGTERM and SIGINT only set `received`, so the loop can stop at a safe point and
    checkpoint (a preempted cluster job loses nothing). A second signal gets the previous behaviour (a
    second Ctrl-C interrupts at once). Signals that are ignored (SIGINT of a background job) stay ignored;
    outside the main thread Python cannot set handlers, and nothing changes."""

    def __init__(self, signals: Iterable[int] = (signal.SIGTERM, signal.SIGINT)) -> None:
        self.signals = tuple(signals)
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is threading.main_thread():
            for sig in self.signals:
                if signal.getsignal(sig) is not signal.SIG_IGN:
                    self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.received = signum
        signal.signal(signum, self._previous[signum])

    def __exit__(self, *exc: Any) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()
