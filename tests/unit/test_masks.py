"""Masked critics for agents that come and go (strict_lockstep False), against NumPy references.

Rows where agent i is absent (alive_i = 0) train neither Q_i nor mu_i; the
critics see every agent's alive flag beside x and a (and the next-state
flags beside x'); a'_k is padding where agent k is not in x'.
"""

import numpy as np
import pytest
import torch

from rllib_maddpg.core import joint as jb
from rllib_maddpg.core import losses, update
from support import ComeAndGoEnv, StampEnv, build_policies, gradient_step, numpy_mlp, random_joint_batch

pytestmark = pytest.mark.unit


def masked_batch(agents, batch_size=32, seed=0):
    """A random joint minibatch whose alive flags are random 0/1, absent slots zeros."""
    batch = random_joint_batch(agents, batch_size, seed)
    rng = np.random.default_rng(seed + 100)
    for k in range(len(agents)):
        for flag, columns in ((jb.alive_col(k), (jb.obs_col(k), jb.actions_col(k), jb.rewards_col(k))),
                              (jb.next_alive_col(k), (jb.new_obs_col(k),))):
            alive = torch.from_numpy((rng.random(batch_size) < 0.6).astype(np.float32))
            batch[flag] = alive
            for name in columns:
                batch[name] = batch[name] * (alive if batch[name].ndim == 1 else alive[:, None])
    return batch


def test_masked_critic_sees_alive_flags_and_a_lockstep_one_does_not():
    config, policies = build_policies(env=ComeAndGoEnv)
    assert config._maddpg_masked and policies[0].masked
    assert policies[0].model.critic[0].in_features == 3 * (3 + 1 + 1)
    config, policies = build_policies(env=StampEnv)
    assert not config._maddpg_masked
    assert policies[0].model.critic[0].in_features == (3 + 4 + 5) + (2 + 3 + 5)
    config, policies = build_policies(env=StampEnv, strict_lockstep=False)
    assert policies[0].model.critic[0].in_features == (3 + 4 + 5) + (2 + 3 + 5) + 3


def test_target_actions_are_padding_where_the_agent_is_not_in_the_next_state():
    config, policies = build_policies(env=ComeAndGoEnv)
    batch = masked_batch(config._maddpg_agents)
    jb.attach_target_actions(batch, policies, masked=True)
    for k in range(3):
        absent = batch[jb.next_alive_col(k)] == 0
        assert absent.any() and (~absent).any()
        assert (batch[jb.target_actions_col(k)][absent] == 0).all()
        assert (batch[jb.target_actions_col(k)][~absent] != 0).any()


@pytest.mark.parametrize("agent", [0, 1, 2])
def test_masked_critic_loss_like_a_numpy_reference(agent):
    config, policies = build_policies(env=ComeAndGoEnv, gamma=0.9)
    batch = masked_batch(config._maddpg_agents, batch_size=16, seed=agent)
    batch[jb.terminateds_col(agent)][:4] = 1.0
    jb.attach_target_actions(batch, policies, masked=True)
    p = policies[agent]
    b = {k: v.numpy() for k, v in batch.items()}
    x = np.concatenate([b[jb.obs_col(k)] for k in range(3)] + [b[jb.actions_col(k)] for k in range(3)]
                       + [b[jb.alive_col(k)][:, None] for k in range(3)], -1)
    x_tp1 = np.concatenate([b[jb.new_obs_col(k)] for k in range(3)]
                           + [b[jb.target_actions_col(k)] for k in range(3)]
                           + [b[jb.next_alive_col(k)][:, None] for k in range(3)], -1)
    y = b[jb.rewards_col(agent)] + 0.9 * (1 - b[jb.terminateds_col(agent)]) * numpy_mlp(p.model.target_critic, x_tp1)
    alive = b[jb.alive_col(agent)]
    expected = np.sum(alive * (numpy_mlp(p.model.critic, x) - y) ** 2) / alive.sum()
    stats = gradient_step(p, "critic", batch)
    assert stats["critic_loss"] == pytest.approx(expected, rel=1e-4)


def test_critic_target_at_a_termination_is_the_reward_alone():
    rewards = torch.tensor([1.0, 2.0, 3.0])
    y = losses.critic_target(rewards, torch.tensor([1.0, 0.0, 1.0]), torch.tensor([10.0, 10.0, 10.0]), 0.5)
    torch.testing.assert_close(y, torch.tensor([1.0, 7.0, 3.0]))


@pytest.mark.parametrize("phase", ["critic", "actor"])
def test_rows_where_agent_i_is_absent_do_not_train_it(phase):
    """Changing agent i's data on rows where it is absent changes nothing of its update."""
    config, policies = build_policies(env=ComeAndGoEnv)
    batch = masked_batch(config._maddpg_agents, seed=3)
    jb.attach_target_actions(batch, policies, masked=True)
    i = 1
    absent = batch[jb.alive_col(i)] == 0
    other = {k: v.clone() for k, v in batch.items()}
    other[jb.rewards_col(i)][absent] = 100.0
    other[jb.terminateds_col(i)][absent] = 1.0 - other[jb.terminateds_col(i)][absent]
    loss_a, _ = update.LOSSES[phase](policies[i], batch)
    loss_b, _ = update.LOSSES[phase](policies[i], other)
    torch.testing.assert_close(loss_a, loss_b)
    # ... while changing a row where it is present does change it.
    other[jb.rewards_col(i)][~absent] += 1.0
    other[jb.obs_col(i)][~absent] += 1.0
    loss_c, _ = update.LOSSES[phase](policies[i], other)
    assert not torch.allclose(loss_a, loss_c)


def test_masked_mean_over_no_row_is_zero_not_nan():
    assert losses.masked_mean(torch.ones(3), torch.zeros(3)).item() == 0.0
