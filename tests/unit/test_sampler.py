"""The lockstep sampler's joint rows (sampler.py), on hand-written episodes, against NumPy.

A fake env runner holds the policies and sub-envs: no Ray. ComeAndGoEnv
(tests/support.py) scripts an agent that dies, one that arrives late and
leaves early, and one that stays.
"""

from types import SimpleNamespace

import numpy as np
import pytest

from ray.rllib.policy.sample_batch import SampleBatch

from rllib_maddpg import joint_batch
from rllib_maddpg.core import joint as jb
from rllib_maddpg.sampler import LockstepSampler
from support import BatchedStampEnv, ComeAndGoEnv, StampEnv, build_policies

pytestmark = pytest.mark.unit


def make_sampler(env_cls, num_envs=1, **overrides):
    config, policies = build_policies(env=env_cls, **overrides)
    envs = [env_cls() for _ in range(num_envs)]
    worker = SimpleNamespace(
        config=config, worker_index=0,
        policy_map={a.policy_id: p for a, p in zip(config._maddpg_agents, policies)},
        async_env=SimpleNamespace(get_sub_environments=lambda: envs),
    )
    return LockstepSampler(worker), envs, config


def rows_of(batch, agents):
    return joint_batch.joint_rows(batch, agents)


def test_come_and_go_rows_match_a_numpy_reference():
    sampler, envs, config = make_sampler(ComeAndGoEnv)
    assert config._maddpg_masked
    batch = sampler.sample(4)
    rows = rows_of(batch, config._maddpg_agents)
    # Who acted at t = 0..3, and who is in x' after each step (1 terminates at
    # step 2; 2 arrives after step 1 and is truncated at step 3, still in x').
    alive = np.array([[1, 1, 0], [1, 1, 1], [1, 0, 1], [1, 0, 0]], np.float32)
    next_alive = np.array([[1, 1, 1], [1, 0, 1], [1, 0, 1], [1, 0, 0]], np.float32)
    stamp = rows[jb.obs_col(0)][0, 2]
    for k in range(3):
        np.testing.assert_array_equal(rows[jb.alive_col(k)], alive[:, k])
        np.testing.assert_array_equal(rows[jb.next_alive_col(k)], next_alive[:, k])
        t = np.arange(4, dtype=np.float32)
        obs = np.stack([np.full(4, k), t, np.full(4, stamp)], 1) * alive[:, k:k + 1]
        new_obs = np.stack([np.full(4, k), t + 1, np.full(4, stamp)], 1) * next_alive[:, k:k + 1]
        np.testing.assert_array_equal(rows[jb.obs_col(k)], obs)
        np.testing.assert_array_equal(rows[jb.new_obs_col(k)], new_obs)
        np.testing.assert_allclose(rows[jb.rewards_col(k)], (k + 0.1 * (t + 1)) * alive[:, k], rtol=1e-6)
        # Padding: an absent agent's action slot is zeros.
        assert not rows[jb.actions_col(k)][alive[:, k] == 0].any()
    np.testing.assert_array_equal(rows[jb.terminateds_col(1)], [0, 1, 0, 0])
    np.testing.assert_array_equal(rows[jb.terminateds_col(2)], [0, 0, 0, 0])  # truncated, not terminated
    # Only present agents were sent actions.
    assert envs[0].received == [[0, 1], [0, 1, 2], [0, 2], [0]]
    # The episode ended and the next one starts with agents 0 and 1 again.
    rows = rows_of(sampler.sample(1), config._maddpg_agents)
    assert [rows[jb.alive_col(k)][0] for k in range(3)] == [1, 1, 0]


def test_come_and_go_over_several_envs_and_fragments_keeps_rows_per_env_in_order():
    sampler, envs, config = make_sampler(ComeAndGoEnv, num_envs=3)
    batch = sampler.sample(3)
    batch2 = sampler.sample(3)
    for b in (batch, batch2):
        rows = rows_of(b, config._maddpg_agents)
        t = rows[jb.obs_col(0)][:, 1]
        # Step t of an episode always has the same agents alive, whatever the fragment.
        expected = {0: [1, 1, 0], 1: [1, 1, 1], 2: [1, 0, 1], 3: [1, 0, 0]}
        for row, step in enumerate(t.astype(int)):
            assert [rows[jb.alive_col(k)][row] for k in range(3)] == expected[step]
    for env in envs:
        assert env.received[:4] == [[0, 1], [0, 1, 2], [0, 2], [0]]


def test_strict_lockstep_refuses_an_agent_absent_before_the_episode_ends():
    with pytest.raises(RuntimeError, match=r"agent\(s\) \[2\].*reset.*strict_lockstep=False"):
        make_sampler(ComeAndGoEnv, strict_lockstep=True)


def test_strict_lockstep_refuses_an_agent_that_dies_early():
    class ArriveOnTime(ComeAndGoEnv):
        def reset(self, *, seed=None, options=None):
            obs, info = super().reset(seed=seed)
            self.agents = [0, 1, 2]
            return self._obs_of(self.agents), info

    sampler, _, _ = make_sampler(ArriveOnTime, strict_lockstep=True)
    with pytest.raises(RuntimeError, match=r"agent\(s\) \[1\] finished.*step 2.*strict_lockstep=False"):
        sampler.sample(4)


def test_lockstep_env_rows_are_all_alive_and_unmasked():
    sampler, _, config = make_sampler(StampEnv, num_envs=2)
    assert not config._maddpg_masked  # StampEnv declares strict lockstep
    rows = rows_of(sampler.sample(10), config._maddpg_agents)
    for k in range(3):
        assert rows[jb.alive_col(k)].all() and rows[jb.next_alive_col(k)].all()
    # A row is one env step of every agent: the same step and episode stamp.
    assert (rows[jb.obs_col(0)][:, 1:3] == rows[jb.obs_col(2)][:, 1:3]).all()


def test_joint_rows_are_shipped_once_beside_the_agents_own_columns():
    """Joint rows made once per env step: no policy's batch carries joint
    columns; they travel once, as the JOINT_ROWS batch, one row per env step."""
    sampler, _, config = make_sampler(ComeAndGoEnv, num_envs=2)
    batch = sampler.sample(4)
    joint = batch.policy_batches[joint_batch.JOINT_ROWS]
    assert joint.count == batch.env_steps() == 8
    assert set(joint.keys()) == set(jb.replay_columns(config._maddpg_agents))
    for agent in config._maddpg_agents:
        pb = batch.policy_batches[agent.policy_id]
        assert not [name for name in pb.keys() if name.startswith("joint_")]
        k = int(pb[SampleBatch.AGENT_INDEX][0])
        np.testing.assert_array_equal(pb[jb.ALIVE], joint[jb.alive_col(k)])
    assert joint_batch.agent_steps(batch) == 3 * 8


def _sampler_over(envs, config, policies):
    worker = SimpleNamespace(
        config=config, worker_index=0,
        policy_map={a.policy_id: p for a, p in zip(config._maddpg_agents, policies)},
        async_env=SimpleNamespace(get_sub_environments=lambda: envs),
    )
    return LockstepSampler(worker)


@pytest.mark.parametrize("terminate", [False, True], ids=["truncated", "terminated"])
def test_a_batched_env_gives_the_rows_of_its_copies_stepped_one_by_one(terminate):
    """The batched path (one step() for all copies, arrays, same-step restarts) writes
    the rows the per-copy path writes for the same copies, copies ending at different
    steps included; episode metrics come from the batched env."""
    config, policies = build_policies(env=StampEnv, env_config={"episode_len": 3})
    one_by_one = _sampler_over([StampEnv({"episode_len": 3 + b, "terminate": terminate})
                                for b in range(3)], config, policies)
    batched = _sampler_over([BatchedStampEnv({"episode_len": 3, "terminate": terminate})
                             for _ in range(3)], config, policies)
    assert batched.batched_env is not None and one_by_one.batched_env is None
    for steps in (4, 7):  # episodes run across sample() calls
        expected, got = rows_of(one_by_one.sample(steps), config._maddpg_agents), \
            rows_of(batched.sample(steps), config._maddpg_agents)
        assert sorted(got) == sorted(expected)
        for column in expected:
            if column in {jb.actions_col(k) for k in range(3)}:
                continue  # exploration noise is drawn
            np.testing.assert_array_equal(got[column], expected[column], err_msg=column)
    episodes = batched.pop_metrics()
    assert all(m.custom_metrics == {"length": float(m.episode_length)} for m in episodes)
    lengths = sorted(m.episode_length for m in episodes)
    assert lengths == sorted(m.episode_length for m in one_by_one.pop_metrics()) == [3, 3, 3, 4, 4, 5, 5]


def test_a_batched_env_is_refused_with_masked_agents():
    config, policies = build_policies(env=BatchedStampEnv, strict_lockstep=False)
    with pytest.raises(ValueError, match="strict_lockstep=True"):
        _sampler_over([BatchedStampEnv()], config, policies)
