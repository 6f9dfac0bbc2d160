"""The run-directory rules of `rllib train` (rllib_maddpg/cli/run.py), without Ray."""

import os

import pytest

from rllib_maddpg.cli.errors import UsageError
from rllib_maddpg.cli.experiments import flatten_stop
from rllib_maddpg.cli.progress import format_returns
from rllib_maddpg.cli.run import _new_run_name, lock_run_dir, set_aside_unrecorded_checkpoints

pytestmark = pytest.mark.unit


def test_checkpoints_after_the_recorded_one_are_moved_aside_never_overwritten(tmp_path, capsys):
    for name in ("checkpoint_000000", "checkpoint_000001", "checkpoint_000002", "unrecorded_checkpoint_000002"):
        os.makedirs(tmp_path / name)
    set_aside_unrecorded_checkpoints(str(tmp_path), str(tmp_path / "checkpoint_000000"))
    assert sorted(os.listdir(tmp_path)) == [
        "checkpoint_000000", "unrecorded_checkpoint_000001", "unrecorded_checkpoint_000002",
        "unrecorded_checkpoint_000002_2"]
    assert "checkpoint_000002 was written after Tune's last record" in capsys.readouterr().out
    set_aside_unrecorded_checkpoints(str(tmp_path), None)  # none recorded: all are set aside
    assert "checkpoint_000000" not in os.listdir(tmp_path)


def test_a_new_run_never_reuses_a_directory(tmp_path):
    assert _new_run_name(str(tmp_path), "exp") == "exp"
    os.makedirs(tmp_path / "exp")
    first = _new_run_name(str(tmp_path), "exp")
    os.makedirs(tmp_path / first)
    second = _new_run_name(str(tmp_path), "exp")
    assert first.startswith("exp_20") and second.startswith("exp_20")  # exp_<date>_<time>[_2]
    assert not os.path.exists(tmp_path / second)


def test_the_run_lock_refuses_a_second_holder(tmp_path):
    held = lock_run_dir(str(tmp_path))
    try:
        with pytest.raises(UsageError, match=f"pid {os.getpid()}"):
            lock_run_dir(str(tmp_path))
    finally:
        held.close()
    lock_run_dir(str(tmp_path)).close()  # free again once the holder let go


def test_stop_criteria_are_flat_numbers():
    assert flatten_stop({"env_runners": {"episode_return_mean": 5}, "training_iteration": 3}, "x") == {
        "env_runners/episode_return_mean": 5, "training_iteration": 3}
    with pytest.raises(UsageError, match="must be a number"):
        flatten_stop({"training_iteration": "10"}, "x")


def test_the_progress_line_shows_the_episode_return_beside_each_policys():
    runners = {"policy_reward_mean": {"shared": -24.0}, "episode_return_mean": -144.0}  # 6 agents share
    assert format_returns({"env_runners": runners}) == "return shared=-24.00 (episode -144.00)"
    runners = {"policy_reward_mean": {"a": -1.0, "b": 2.5}, "episode_return_mean": 1.5}
    assert format_returns({"env_runners": runners}) == "return a=-1.00 b=2.50 (episode 1.50)"
    runners = {"policy_reward_mean": {"agent_0": -3.0}, "episode_return_mean": -3.0}  # one agent
    assert format_returns({"env_runners": runners}) == "return agent_0=-3.00"
    assert format_returns({"env_runners": {}}) == "return -"


def test_the_summary_tells_an_interrupted_trial_from_one_never_started(tmp_path, capsys):
    import types

    from rllib_maddpg.cli.errors import EXIT_INTERRUPTED
    from rllib_maddpg.cli.progress import report

    def result(name, iterations, checkpoint=None):
        path = tmp_path / name
        path.mkdir()
        metrics = {"training_iteration": iterations, "trial_id": name, "done": False} if iterations else {}
        return types.SimpleNamespace(metrics=metrics, error=None, path=str(path),
                                     checkpoint=checkpoint and types.SimpleNamespace(path=checkpoint))

    code = report("exp", str(tmp_path), 3.0, [result("ran", 16, "/x/checkpoint_000000"), result("ran_no_ckpt", 2),
                                              result("pending", 0)])
    out = capsys.readouterr().out
    assert code == EXIT_INTERRUPTED
    assert "last checkpoint: /x/checkpoint_000000" in out
    assert "no checkpoint yet (--checkpoint-freq N" in out  # it ran, and its iterations will run again
    assert "pending: INTERRUPTED, 0 iterations" in out and "not started yet: --resume starts it" in out
