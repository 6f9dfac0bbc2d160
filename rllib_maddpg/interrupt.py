"""Nothing lost on Ctrl-C or preemption: the first SIGINT or SIGTERM checkpoints every running trial.

Tune's own Ctrl-C ends a run at once and keeps only the checkpoints already
written; a trial resumed from there loses every iteration since its last one.
Here the first signal instead pauses each running trial at the end of its
current iteration with a checkpoint (Tune's PAUSE decision: the trial saves,
then stops, and Tune records it as unfinished, so `Tuner.restore(...,
resume_unfinished=True)` and `rllib train ... --resume` continue from that
checkpoint), then ends the run. A second signal, or `timeout_s` without all
checkpoints, ends it at once, as Tune's Ctrl-C does.

    from ray import tune
    from rllib_maddpg.interrupt import CheckpointOnInterrupt, checkpoint_on_interrupt

    tuner = tune.Tuner("MADDPG", param_space=config,
                       tune_config=tune.TuneConfig(scheduler=CheckpointOnInterrupt()))
    with checkpoint_on_interrupt():
        results = tuner.fit()

`rllib train` does this for every run. The scheduler is Tune's FIFO order (the
default) plus the pause; it travels in the run's tuner.pkl, so a restored
Tuner has it too. Signal handlers live in the main thread only: fit() in
another thread cannot use this.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from typing import Iterator, Optional, Sequence

from ray.tune.experiment import Trial
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from rllib_maddpg.ray_compat import end_tune_run

DEFAULT_TIMEOUT_S = 120.0


class _Interrupt:
    """This process's interrupt state: written by the signal handlers, read by the scheduler
    (a restored Tuner holds an unpickled copy of the scheduler, so the state cannot live on it)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.signal_name: Optional[str] = None  # "SIGINT" once the first signal arrived
        self.since = 0.0
        self.watched = False  # a CheckpointOnInterrupt scheduler is running this fit()
        self.ended = False


_STATE = _Interrupt()


def interrupted() -> Optional[str]:
    """The name of the signal that interrupted the current run ("SIGINT", "SIGTERM"), or None."""
    return _STATE.signal_name


class CheckpointOnInterrupt(FIFOScheduler):
    """Tune's FIFO scheduler that, once checkpoint_on_interrupt() has caught a signal,
    pauses every running trial with a checkpoint and then ends the run."""

    def __init__(self, timeout_s: float = DEFAULT_TIMEOUT_S):
        if not timeout_s > 0:
            raise ValueError(f"timeout_s={timeout_s!r}: the longest wait for the checkpoints, in "
                             "seconds, must be > 0 (e.g. 120)")
        super().__init__()
        self.timeout_s = float(timeout_s)

    def on_trial_result(self, tune_controller, trial: Trial, result: dict) -> str:
        return TrialScheduler.PAUSE if _STATE.signal_name else TrialScheduler.CONTINUE

    def choose_trial_to_run(self, tune_controller) -> Optional[Trial]:
        _STATE.watched = True  # Tune asks at every step of its loop
        if not _STATE.signal_name:
            return super().choose_trial_to_run(tune_controller)
        running = [t for t in tune_controller.get_live_trials() if t.status == Trial.RUNNING]
        waited = time.time() - _STATE.since
        if not running:
            _end_run(f"all checkpoints saved; stopping. Resume with --resume (rllib train) "
                     f"or Tuner.restore(..., resume_unfinished=True).")
        elif waited > self.timeout_s:
            _end_run(f"{len(running)} trial(s) saved no checkpoint within {self.timeout_s:g} s; "
                     "stopping without them (they resume from their last checkpoint).")
        return None  # start no trial, and resume no paused one, while stopping

    def debug_string(self) -> str:
        return "FIFO scheduling; on the first SIGINT/SIGTERM each running trial is checkpointed and paused."


def _say(text: str) -> None:
    print(f"rllib: {text}", file=sys.stderr, flush=True)


def _end_run(text: str) -> None:
    if not _STATE.ended:
        _STATE.ended = True
        _say(text)
        end_tune_run()


@contextlib.contextmanager
def checkpoint_on_interrupt(signals: Sequence[int] = (signal.SIGINT, signal.SIGTERM)) -> Iterator[None]:
    """Catches SIGINT and SIGTERM while the block runs (a Tuner.fit() whose scheduler is a
    CheckpointOnInterrupt): the first signal asks for the checkpoints, a second ends the
    run at once. Under any other scheduler the first signal ends the run as Tune's Ctrl-C does."""
    previous = {sig: signal.getsignal(sig) for sig in signals}
    tune_sigint = os.environ.get("TUNE_DISABLE_SIGINT_HANDLER")

    def restore_handlers() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    def handler(signum, frame):
        name = signal.Signals(signum).name
        if _STATE.signal_name is None:
            _STATE.signal_name, _STATE.since = name, time.time()
            if _STATE.watched:
                _say(f"{name}: checkpointing every running trial at the end of its current iteration, "
                     f"then stopping (send it again to stop at once, without these checkpoints)")
                return
            _say(f"{name}: stopping (this run's scheduler does not checkpoint on interrupt)")
        elif not _STATE.ended:
            _say(f"{name} again: stopping now, without the checkpoints not yet saved")
        else:  # the run is already ending: exit at once
            restore_handlers()
            raise KeyboardInterrupt
        _STATE.ended = True
        end_tune_run()

    _STATE.reset()
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # SIGINT is ours; Tune keeps SIGUSR1
    for sig in signals:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        restore_handlers()
        if tune_sigint is None:
            os.environ.pop("TUNE_DISABLE_SIGINT_HANDLER", None)
        else:
            os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = tune_sigint
