"""n-step rows (core/nstep.py, the `n_step` key) against a loop written from the definition."""

import numpy as np
import pytest
import torch

from ray.rllib.policy.sample_batch import SampleBatch

from rllib_maddpg import joint_batch
from rllib_maddpg.core import joint as jb
from rllib_maddpg.core import losses
from rllib_maddpg.core.nstep import n_step_rows
from support import ComeAndGoEnv
from test_sampler import make_sampler

pytestmark = pytest.mark.unit


def reference(rows, eps, num_agents, gamma, n):
    """y's ingredients row by row: k = steps of row t's episode among t..t+n-1;
    r = sum_j gamma^j r(t+j) until the agent's episode terminates; d = any
    termination; x' = the next state of row t+k-1; discount gamma^k."""
    count = len(eps)
    out = {name: np.array(col, copy=True) for name, col in rows.items()}
    out[jb.DISCOUNT_COL] = np.zeros(count, np.float32)
    for t in range(count):
        k = 0
        while k < n and t + k < count and eps[t + k] == eps[t]:
            k += 1
        out[jb.DISCOUNT_COL][t] = gamma ** k
        for i in range(num_agents):
            total, done = 0.0, 0.0
            for j in range(k):
                if not done:
                    total += gamma ** j * rows[jb.rewards_col(i)][t + j]
                done = max(done, rows[jb.terminateds_col(i)][t + j])
            out[jb.rewards_col(i)][t] = total
            out[jb.terminateds_col(i)][t] = done
            out[jb.new_obs_col(i)][t] = rows[jb.new_obs_col(i)][t + k - 1]
            out[jb.next_alive_col(i)][t] = rows[jb.next_alive_col(i)][t + k - 1]
    return out


def random_rows(count, num_agents, rng):
    rows = {}
    for i in range(num_agents):
        rows[jb.obs_col(i)] = rng.normal(size=(count, 3)).astype(np.float32)
        rows[jb.actions_col(i)] = rng.normal(size=(count, 2)).astype(np.float32)
        rows[jb.rewards_col(i)] = rng.normal(size=count).astype(np.float32)
        rows[jb.new_obs_col(i)] = rng.normal(size=(count, 3)).astype(np.float32)
        rows[jb.terminateds_col(i)] = (rng.random(count) < 0.1).astype(np.float32)
        rows[jb.alive_col(i)] = np.ones(count, np.float32)
        rows[jb.next_alive_col(i)] = (rng.random(count) < 0.9).astype(np.float32)
    return rows


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_n_step_rows_match_the_definition(n):
    rng = np.random.default_rng(n)
    # Episodes of 1, 4, 7 and 2 steps, as a sampler lays them out.
    eps = np.repeat([11, 12, 13, 14], [1, 4, 7, 2])
    rows = random_rows(len(eps), 2, rng)
    got = n_step_rows(rows, eps, 2, 0.9, n)
    want = reference(rows, eps, 2, 0.9, n)
    assert set(got) == set(want)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-6, atol=1e-6, err_msg=name)
    # Unchanged: what the critic is evaluated at.
    for name in (jb.obs_col(0), jb.actions_col(1), jb.alive_col(0)):
        assert got[name] is rows[name]


def test_an_agent_that_terminates_inside_the_window_stops_collecting_rewards():
    eps = np.zeros(4, np.int64)
    rows = random_rows(4, 1, np.random.default_rng(0))
    rows[jb.rewards_col(0)][:] = [1.0, 2.0, 4.0, 8.0]
    rows[jb.terminateds_col(0)][:] = [0.0, 1.0, 0.0, 0.0]  # (padding after it)
    got = n_step_rows(rows, eps, 1, 0.5, 3)
    np.testing.assert_allclose(got[jb.rewards_col(0)], [1 + 0.5 * 2, 2, 4 + 0.5 * 8, 8])
    np.testing.assert_array_equal(got[jb.terminateds_col(0)], [1, 1, 0, 0])
    np.testing.assert_allclose(got[jb.DISCOUNT_COL], [0.125, 0.125, 0.25, 0.5])


def test_the_sampler_ships_n_step_rows_from_its_one_step_agent_batches():
    sampler, _, config = make_sampler(ComeAndGoEnv, num_envs=2, n_step=3, gamma=0.9)
    batch = sampler.sample(4)
    agents = config._maddpg_agents
    rows = joint_batch.joint_rows(batch, agents, 3)
    assert set(rows) == set(jb.replay_columns(agents, 3)) and jb.DISCOUNT_COL in rows
    # The policies' own batches keep one-step rewards: the reference starts from them.
    one_step = {}
    for k, agent in enumerate(agents):
        pb = batch.policy_batches[agent.policy_id]
        one_step[jb.rewards_col(k)] = np.asarray(pb[SampleBatch.REWARDS], np.float32)
        one_step[jb.terminateds_col(k)] = np.asarray(pb[SampleBatch.TERMINATEDS], np.float32)
        one_step[jb.new_obs_col(k)] = np.asarray(pb[SampleBatch.NEXT_OBS], np.float32).reshape(8, -1)
        one_step[jb.next_alive_col(k)] = np.asarray(pb[jb.NEXT_ALIVE], np.float32)
    eps = np.asarray(batch.policy_batches[agents[0].policy_id][SampleBatch.EPS_ID])
    want = reference(one_step, eps, len(agents), 0.9, 3)
    for name in want:
        np.testing.assert_allclose(rows[name], want[name], rtol=1e-6, err_msg=name)


def test_the_discount_column_is_gamma_to_the_k_in_the_target():
    r, d, q = torch.tensor([1.0, 1.0]), torch.tensor([0.0, 0.0]), torch.tensor([10.0, 10.0])
    y = losses.critic_target(r, d, q, torch.tensor([0.9, 0.81]))
    torch.testing.assert_close(y, torch.tensor([10.0, 9.1]))
    torch.testing.assert_close(losses.critic_target(r, d, q, 0.9), torch.tensor([10.0, 10.0]))
