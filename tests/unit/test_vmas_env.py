"""VMAS's scenarios (envs/vmas_env.py): the batched adapter steps as VMAS itself does,
restarts ended copies within the step, and the one-copy env is an RLlib MultiAgentEnv.
Skipped where vmas is not installed (`pip install 'rllib-maddpg[vmas]'`)."""

import numpy as np
import pytest

pytest.importorskip("vmas", reason="the vmas extra is not installed")

import torch
import vmas

from rllib_maddpg.envs.vmas_env import VmasBatched, VmasEnv

pytestmark = pytest.mark.unit

B, STEPS = 4, 5


def test_the_adapter_steps_as_vmas_itself_and_restarts_ended_copies():
    ours = VmasBatched("simple_spread", B, {"max_steps": STEPS}, seed=3)
    theirs = vmas.make_env("simple_spread", num_envs=B, device="cpu", seed=3, max_steps=STEPS,
                           dict_spaces=True, terminated_truncated=True, clamp_actions=True)
    # VMAS seeds torch's global generator: each env is reset from the same seed in turn.
    obs = ours.reset(seed=3)
    expected = theirs.reset(seed=3)
    rng = np.random.default_rng(0)
    for t in range(1, STEPS + 1):
        for agent in ours.possible_agents:
            np.testing.assert_array_equal(obs[agent], expected[agent].numpy(), err_msg=f"{agent} t={t}")
        actions = {a: rng.uniform(-1.5, 1.5, (B, 2)).astype(np.float32) for a in ours.possible_agents}
        obs, rewards, terminated, truncated, info = ours.step(actions)
        expected, exp_rewards, exp_term, exp_trunc, _ = theirs.step(
            {a: torch.as_tensor(v) for a, v in actions.items()})
        for agent in ours.possible_agents:
            assert obs[agent].dtype == np.float32 and obs[agent].shape == (B, 14)
            np.testing.assert_array_equal(rewards[agent], exp_rewards[agent].numpy())
        np.testing.assert_array_equal(terminated, exp_term.numpy())
        np.testing.assert_array_equal(truncated, exp_trunc.numpy())
        if t < STEPS:
            assert info["final_obs"] is None and not truncated.any()
    # The time limit: every copy ended; its last observations are VMAS's, and it restarted.
    assert truncated.all() and not terminated.any()
    for agent in ours.possible_agents:
        np.testing.assert_array_equal(info["final_obs"][agent], expected[agent].numpy())
        assert not np.allclose(obs[agent], info["final_obs"][agent])
    obs, *_ = ours.step({a: np.zeros((B, 2), np.float32) for a in ours.possible_agents})  # a new episode


def test_the_one_copy_env_runs_episodes_to_its_time_limit():
    env = VmasEnv("simple_adversary", {"max_steps": 3})
    assert env.possible_agents == ["adversary_0", "agent_0", "agent_1"] and env.strict_lockstep
    obs, _ = env.reset(seed=0)
    assert all(env.observation_spaces[a].contains(o) for a, o in obs.items())
    for t in range(3):
        obs, rewards, terms, truncs, _ = env.step({a: env.action_spaces[a].sample() for a in env.possible_agents})
        assert truncs["__all__"] == (t == 2) and not terms["__all__"]
        assert set(rewards) == set(env.possible_agents)
    with pytest.raises(RuntimeError, match="reset"):
        env.step({a: env.action_spaces[a].sample() for a in env.possible_agents})
    env.reset()
    assert env.batched(3, seed=1).num_envs == 3


def test_settings_the_plugin_owns_or_needs_are_named():
    with pytest.raises(ValueError, match="max_steps"):
        VmasBatched("navigation", 2, {})
    with pytest.raises(ValueError, match="'device'"):
        VmasBatched("simple_spread", 2, {"device": "cuda"})
