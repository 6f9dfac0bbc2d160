"""Shared policies end to end: train with a remote env runner, joint rows, checkpoint, restore, act alone."""

import os

import numpy as np
import pytest

from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.policy.policy import Policy

from rllib_maddpg import MADDPGConfig
from rllib_maddpg.core import joint as jb
from rllib_maddpg.evaluation import run_episodes
from support import TeamEnv, team_mapping

pytestmark = pytest.mark.integration


def team_config(**training):
    return (
        MADDPGConfig().environment(TeamEnv)
        .multi_agent(policies={"team", "c"}, policy_mapping_fn=team_mapping)
        .training(num_steps_sampled_before_learning_starts=200, train_batch_size=32,
                  shared_policy_agent_id=True, **training)
        .env_runners(num_env_runners=1, num_envs_per_env_runner=2, rollout_fragment_length=12)
        .reporting(min_sample_timesteps_per_iteration=400)
        .debugging(seed=0)
    )


def test_shared_team_trains_checkpoints_restores_and_acts_alone(ray_local, tmp_path):
    algo = team_config().build_algo()
    try:
        result = algo.train()
        assert set(result["info"]["learner"]) == {"team", "c"}  # one update per policy
        assert np.isfinite(result["info"]["learner"]["team"]["learner_stats"]["critic_loss"])
        # One joint row per env step, each agent's columns from the same step (TeamEnv's
        # observation is [k, t, stamp]), although "a" and "b" act through one policy.
        buf = algo.local_replay_buffer
        rows = buf.get_state()["data"]
        assert len(buf) == result["num_env_steps_sampled_lifetime"]
        for k in range(3):
            np.testing.assert_array_equal(rows[jb.obs_col(k)][:, 0], k)
            np.testing.assert_array_equal(rows[jb.obs_col(k)][:, 1:], rows[jb.obs_col(0)][:, 1:])
            t = rows[jb.obs_col(k)][:, 1]
            np.testing.assert_allclose(rows[jb.rewards_col(k)], k + 0.1 * (t + 1), rtol=1e-6)
        # The agent steps count each agent: 3 per env step.
        assert result["num_agent_steps_sampled_lifetime"] == 3 * result["num_env_steps_sampled_lifetime"]
        trained_steps = result["num_env_steps_sampled_lifetime"]
        checkpoint = algo.save(str(tmp_path)).checkpoint.path
        team = algo.get_policy("team")
        obs = np.array([1.0, 2.0, 3.0], np.float32)
        expected = {k: team.compute_single_action(input_dict={"obs": obs, "agent_index": k}, explore=False)[0]
                    for k in (0, 1)}
        assert not np.allclose(expected[0], expected[1])  # the agent id is an input
    finally:
        algo.stop()

    # One agent's actor alone, from the checkpoint (no Algorithm, no Ray).
    alone = Policy.from_checkpoint(os.path.join(checkpoint, "policies", "team"))
    for k in (0, 1):
        action = alone.compute_single_action(input_dict={"obs": obs, "agent_index": k}, explore=False)[0]
        np.testing.assert_allclose(action, expected[k], rtol=1e-6)
    played = run_episodes({"team": alone, "c": Policy.from_checkpoint(os.path.join(checkpoint, "policies", "c"))},
                          {"a": "team", "b": "team", "c": "c"}, TeamEnv(), episodes=2)
    assert played.returns.shape == (2, 3) and played.lengths == [6, 6]

    restored = Algorithm.from_checkpoint(checkpoint)
    try:
        assert restored.train()["num_env_steps_sampled_lifetime"] > trained_steps  # counts on
        assert restored.get_policy("team").group == [0, 1]
    finally:
        restored.stop()
