"""The joint rows from RLlib's sampled batches: the postprocessing hook and the driver's read.

The data flows like this (the row schema: core/joint.py):

1. Sampling (env runners). Each policy's `compute_actions` also returns
   CRITIC_ACTION: its action as the critic sees it (a relaxed one-hot for
   categorical actions, [-1, 1] for Box). RLlib then calls
   `postprocess_trajectory` for each agent with the other agents' batches;
   for the first agent of the joint order (the row owner),
   `attach_joint_columns` attaches every agent's columns, after checking
   that rows line up (same episode, same step): the joint rows are made
   once per env step, not once per agent. The other agents' hooks only
   check their own data. The lockstep sampler then ships the joint rows as
   a batch of their own (JOINT_ROWS) beside the policies' batches.
2. Replay (driver). `joint_rows` takes them (from JOINT_ROWS, or from the
   first agent's batch with RLlib's own sampler) and they go into one
   `JointReplayBuffer` row per env step.
3. Learning (driver). For a minibatch, `core.joint.attach_target_actions`
   computes a'_j = mu'_j(o'_j) with every agent's *current* target actor
   (never at sampling time, when the target actors were older). Each policy
   then learns from the same minibatch (core/update.py).
"""

from typing import Dict, Optional, Sequence

import numpy as np

from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch

from rllib_maddpg.core.joint import (  # noqa: F401  (AgentSpec: checkpoints name it here)
    ALIVE, CRITIC_ACTION, NEXT_ALIVE, SUBPOLICY, AgentSpec, actions_col, alive_col, new_obs_col,
    next_alive_col, obs_col, replay_columns, rewards_col, subpolicy_col, terminateds_col,
)
from rllib_maddpg.core.nstep import n_step_rows
from rllib_maddpg.env_checks import check_finite, not_lockstep

# The key of the joint rows in a MultiAgentBatch from the lockstep sampler.
JOINT_ROWS = "__maddpg_joint_rows__"


def _flat(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float32).reshape(len(x), -1)


def attach_joint_columns(
    batch: SampleBatch,
    other_agent_batches: Optional[Dict],
    agents: Sequence[AgentSpec],
    own_index: int,
    n_step: int = 1,
    gamma: float = 1.0,
) -> SampleBatch:
    """postprocess_trajectory's work: agent `own_index`'s data checked and, for the
    row owner (agent 0 of the joint order), every agent's columns attached
    (with n_step > 1, as n-step rows with discount gamma: core/nstep.py).

    `other_agent_batches` maps agent id -> (policy id, policy, batch), as RLlib
    passes it. It is None while RLlib initialises a policy on a dummy batch;
    then the other agents' columns are filled with zeros of the right shape.
    """
    for column, kind in ((SampleBatch.OBS, "observation"), (SampleBatch.REWARDS, "reward")):
        check_finite(agents[own_index].agent_id, kind, batch[column], batch[SampleBatch.T])
    if own_index != 0:
        return batch  # the row owner's hook attaches the joint columns, once
    n = batch.count
    for k, agent in enumerate(agents):
        if k == own_index:
            source = batch
        elif other_agent_batches is None:
            source = None
        else:
            if agent.agent_id not in other_agent_batches:
                raise not_lockstep(
                    f"agent {agent.agent_id!r} has no data in an episode where agent "
                    f"{agents[own_index].agent_id!r} acted"
                )
            source = other_agent_batches[agent.agent_id][2]
            _check_aligned(batch, source, agents[own_index].agent_id, agent.agent_id)
        if source is None:
            batch[obs_col(k)] = np.zeros((n, agent.obs_dim), np.float32)
            batch[actions_col(k)] = np.zeros((n, agent.action_dim), np.float32)
            batch[rewards_col(k)] = np.zeros(n, np.float32)
            batch[new_obs_col(k)] = np.zeros((n, agent.obs_dim), np.float32)
            batch[terminateds_col(k)] = np.zeros(n, np.float32)
            batch[subpolicy_col(k)] = np.zeros(n, np.int64)
            batch[alive_col(k)] = np.ones(n, np.float32)
            batch[next_alive_col(k)] = np.ones(n, np.float32)
        else:
            batch[obs_col(k)] = _flat(source[SampleBatch.OBS])
            batch[actions_col(k)] = _flat(source[CRITIC_ACTION])
            batch[rewards_col(k)] = np.asarray(source[SampleBatch.REWARDS], np.float32)
            batch[new_obs_col(k)] = _flat(source[SampleBatch.NEXT_OBS])
            batch[terminateds_col(k)] = np.asarray(source[SampleBatch.TERMINATEDS], np.float32)
            batch[subpolicy_col(k)] = (
                np.asarray(source[SUBPOLICY], np.int64) if SUBPOLICY in source
                else np.zeros(n, np.int64)
            )
            # RLlib's own sampler gives only the steps an agent acted (all of
            # them, as _check_aligned makes sure): alive throughout.
            for name, column in ((ALIVE, alive_col(k)), (NEXT_ALIVE, next_alive_col(k))):
                batch[column] = (np.asarray(source[name], np.float32) if name in source
                                 else np.ones(n, np.float32))
    if n_step > 1:
        names = list(replay_columns(agents))
        rows = n_step_rows({name: batch[name] for name in names}, np.asarray(batch[SampleBatch.EPS_ID]),
                           len(agents), gamma, n_step)
        for name, column in rows.items():
            batch[name] = column
    return batch


def _check_aligned(own: SampleBatch, other: SampleBatch, own_id, other_id) -> None:
    """Rows of two agents' batches must be the same env steps, in the same order."""
    if (
        own.count != other.count
        or not np.array_equal(own[SampleBatch.T], other[SampleBatch.T])
        or not np.array_equal(own[SampleBatch.EPS_ID], other[SampleBatch.EPS_ID])
    ):
        raise not_lockstep(
            f"the rows of agents {own_id!r} ({own.count} steps) and {other_id!r} "
            f"({other.count} steps) are not the same env steps"
        )


def split_joint_rows(batch: SampleBatch) -> SampleBatch:
    """Moves the joint columns out of the row owner's postprocessed batch into a
    batch of their own (the lockstep sampler ships it as JOINT_ROWS)."""
    names = [name for name in batch.keys() if name.startswith("joint_")]
    return SampleBatch({name: batch.pop(name) for name in names})


def joint_rows(batch: MultiAgentBatch, agents: Sequence[AgentSpec], n_step: int = 1) -> Dict[str, np.ndarray]:
    """The joint replay rows of a sampled MultiAgentBatch, one per env step.

    From the lockstep sampler: its JOINT_ROWS batch. From RLlib's own sampler:
    the row owner's batch (agent 0's policy, unshared there). Every policy's
    rows must be the same env steps: a shared policy's batch holds one row
    per agent of its group.
    """
    group_size: Dict[str, int] = {}
    for agent in agents:
        group_size[agent.policy_id] = group_size.get(agent.policy_id, 0) + 1
    rows = batch.policy_batches.get(JOINT_ROWS, batch.policy_batches[agents[0].policy_id])
    steps = rows.count if JOINT_ROWS in batch.policy_batches else rows.count // group_size[agents[0].policy_id]
    for pid, size in group_size.items():
        count = batch.policy_batches[pid].count
        if count != steps * size:
            raise not_lockstep(
                f"policy {pid!r} of {size} agent(s) sampled {count} rows where "
                f"{steps} env steps need {steps * size}"
            )
    return {name: rows[name] for name in replay_columns(agents, n_step)}


def agent_steps(batch: MultiAgentBatch) -> int:
    """Agent steps of a sampled batch (its joint rows are not agent steps)."""
    return sum(b.count for pid, b in batch.policy_batches.items() if pid != JOINT_ROWS)
