"""rllib_maddpg/interrupt.py: what the first and the second signal do, and the scheduler's
pause, wait and timeout, on a stand-in for Tune's controller. The whole path through Tune
and `rllib train --resume` is tests/integration/test_resume.py."""

import signal
import time
import types

import pytest
from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler

from rllib_maddpg import interrupt

pytestmark = pytest.mark.unit


@pytest.fixture
def ended(monkeypatch):
    """Records each end_tune_run() instead of ending a Tune loop."""
    calls = []
    monkeypatch.setattr(interrupt, "end_tune_run", lambda: calls.append(time.time()))
    return calls


def controller(*statuses):
    trials = [types.SimpleNamespace(status=status) for status in statuses]
    return types.SimpleNamespace(get_live_trials=lambda: trials, get_trials=lambda: trials)


def test_before_a_signal_it_is_tunes_fifo_scheduler(ended):
    scheduler = interrupt.CheckpointOnInterrupt()
    with interrupt.checkpoint_on_interrupt():
        assert scheduler.on_trial_result(None, None, {}) == TrialScheduler.CONTINUE
        assert scheduler.choose_trial_to_run(controller(Trial.RUNNING)) is None  # FIFO: nothing pending
        assert interrupt.interrupted() is None
    assert not ended


def test_first_signal_pauses_running_trials_then_ends_the_run_once_none_runs(ended, capsys):
    scheduler = interrupt.CheckpointOnInterrupt()
    with interrupt.checkpoint_on_interrupt():
        scheduler.choose_trial_to_run(controller(Trial.RUNNING))  # Tune's loop is running
        signal.raise_signal(signal.SIGTERM)
        assert interrupt.interrupted() == "SIGTERM"
        assert "SIGTERM: checkpointing every running trial" in capsys.readouterr().err
        assert scheduler.on_trial_result(None, None, {}) == TrialScheduler.PAUSE  # Tune saves, then pauses it
        assert scheduler.choose_trial_to_run(controller(Trial.RUNNING, Trial.PENDING)) is None
        assert not ended  # still one running: wait for its checkpoint
        assert scheduler.choose_trial_to_run(controller(Trial.PAUSED, Trial.PENDING)) is None
        assert len(ended) == 1 and "all checkpoints saved" in capsys.readouterr().err
        scheduler.choose_trial_to_run(controller(Trial.PAUSED))
        assert len(ended) == 1


def test_the_wait_for_checkpoints_is_bounded(ended, capsys):
    scheduler = interrupt.CheckpointOnInterrupt(timeout_s=0.05)
    with interrupt.checkpoint_on_interrupt():
        scheduler.choose_trial_to_run(controller(Trial.RUNNING))
        signal.raise_signal(signal.SIGINT)
        scheduler.choose_trial_to_run(controller(Trial.RUNNING))
        assert not ended
        time.sleep(0.1)
        scheduler.choose_trial_to_run(controller(Trial.RUNNING))
        assert len(ended) == 1
        assert "1 trial(s) saved no checkpoint within 0.05 s" in capsys.readouterr().err


def test_a_second_signal_ends_the_run_and_a_third_exits(ended, capsys):
    scheduler = interrupt.CheckpointOnInterrupt()
    with interrupt.checkpoint_on_interrupt():
        scheduler.choose_trial_to_run(controller(Trial.RUNNING))
        signal.raise_signal(signal.SIGINT)
        assert not ended
        signal.raise_signal(signal.SIGINT)
        assert len(ended) == 1 and "SIGINT again: stopping now" in capsys.readouterr().err
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
        assert len(ended) == 1


def test_under_another_scheduler_the_first_signal_ends_the_run_as_tunes_ctrl_c(ended, capsys):
    with interrupt.checkpoint_on_interrupt():  # no CheckpointOnInterrupt asked Tune's loop anything
        signal.raise_signal(signal.SIGINT)
        assert len(ended) == 1
        assert "does not checkpoint on interrupt" in capsys.readouterr().err


def test_handlers_and_tunes_setting_are_restored(monkeypatch):
    monkeypatch.delenv("TUNE_DISABLE_SIGINT_HANDLER", raising=False)
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    with interrupt.checkpoint_on_interrupt():
        assert signal.getsignal(signal.SIGINT) is not before[signal.SIGINT]
        assert signal.getsignal(signal.SIGTERM) is signal.getsignal(signal.SIGINT)
        assert interrupt.os.environ["TUNE_DISABLE_SIGINT_HANDLER"] == "1"  # SIGINT is ours, not Tune's
    assert {sig: signal.getsignal(sig) for sig in before} == before
    assert "TUNE_DISABLE_SIGINT_HANDLER" not in interrupt.os.environ


def test_the_scheduler_pickles_and_checks_its_timeout():
    import pickle

    assert pickle.loads(pickle.dumps(interrupt.CheckpointOnInterrupt(timeout_s=7))).timeout_s == 7
    with pytest.raises(ValueError, match="timeout_s=0.*must be > 0"):
        interrupt.CheckpointOnInterrupt(timeout_s=0)
