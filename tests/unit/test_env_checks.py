"""MADDPG's env-data rules (env_checks.py), as postprocessing applies them to RLlib's per-agent batches."""

import numpy as np
import pytest

from ray.rllib.policy.sample_batch import SampleBatch

from rllib_maddpg import joint_batch
from rllib_maddpg.core import joint as jb
from rllib_maddpg.env_checks import LOCKSTEP_FIX, check_finite, not_lockstep
from support import build_policies

pytestmark = pytest.mark.unit


def test_check_finite_names_the_agent_and_the_step_of_the_first_bad_row():
    check_finite("a", "reward", [0.0, 1.0], [1, 2])  # finite: no error
    obs = np.zeros((4, 2))
    obs[2, 1] = np.inf
    with pytest.raises(ValueError, match=r"observation .*agent 'a' at step 7 ") as err:
        check_finite("a", "observation", obs, [5, 6, 7, 8])
    assert "clip" in str(err.value)


def test_not_lockstep_says_what_happened_and_the_fix():
    error = not_lockstep("agent 'b' left")
    assert isinstance(error, RuntimeError) and str(error) == f"agent 'b' left. {LOCKSTEP_FIX}"


def _agent_batch(agent, t, eps_id=0, reward=0.0):
    n = len(t)
    return SampleBatch({
        SampleBatch.OBS: np.zeros((n, agent.obs_dim), np.float32),
        SampleBatch.NEXT_OBS: np.zeros((n, agent.obs_dim), np.float32),
        jb.CRITIC_ACTION: np.zeros((n, agent.action_dim), np.float32),
        SampleBatch.REWARDS: np.full(n, reward, np.float32),
        SampleBatch.TERMINATEDS: np.zeros(n, bool),
        SampleBatch.T: np.asarray(t),
        SampleBatch.EPS_ID: np.full(n, eps_id),
    })


def test_postprocessing_refuses_a_nan_reward_and_misaligned_or_missing_agents():
    config, policies = build_policies()
    agents = config._maddpg_agents
    others = {a.agent_id: (a.policy_id, None, _agent_batch(a, [0, 1, 2])) for a in agents[1:]}
    joint_batch.attach_joint_columns(_agent_batch(agents[0], [0, 1, 2]), others, agents, 0)  # fine

    bad = _agent_batch(agents[0], [0, 1, 2])
    bad[SampleBatch.REWARDS][1] = np.nan
    with pytest.raises(ValueError, match=r"reward .*agent 0 at step 1 "):
        joint_batch.attach_joint_columns(bad, others, agents, 0)

    shifted = dict(others)
    shifted[agents[2].agent_id] = (agents[2].policy_id, None, _agent_batch(agents[2], [1, 2, 3]))
    with pytest.raises(RuntimeError, match="not the same env steps") as err:
        joint_batch.attach_joint_columns(_agent_batch(agents[0], [0, 1, 2]), shifted, agents, 0)
    assert LOCKSTEP_FIX in str(err.value)

    missing = {k: v for k, v in others.items() if k != agents[1].agent_id}
    with pytest.raises(RuntimeError, match="has no data") as err:
        joint_batch.attach_joint_columns(_agent_batch(agents[0], [0, 1, 2]), missing, agents, 0)
    assert LOCKSTEP_FIX in str(err.value)
