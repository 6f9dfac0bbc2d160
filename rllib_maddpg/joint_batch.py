"""The centralized-critic data path, in one place.

MADDPG's critic Q_i(x, a_1..a_N) needs, for every env step, every agent's
observation, action, reward, next observation and termination; the actors
act on their own observations only. The data flows like this:

1. Sampling (env runners). Each policy's `compute_actions` also returns
   CRITIC_ACTION: its action as the critic sees it (a relaxed one-hot for
   categorical actions, [-1, 1] for Box). RLlib then calls
   `postprocess_trajectory` for each agent with the other agents' batches;
   `attach_joint_columns` copies all agents' columns into each agent's batch,
   after checking that rows line up (same episode, same step).
2. Replay (driver). The per-policy batches now hold the same joint rows, so
   `joint_rows` takes them once, from the first agent's batch, and they go
   into one `JointReplayBuffer` row per env step.
3. Learning (driver). For a minibatch, `attach_target_actions` computes
   a'_j = mu'_j(o'_j) with every agent's *current* target actor (never at
   sampling time, when the target actors were older). Each policy then
   learns from the same minibatch.

Batch schema. Agent k is the k-th agent of the env's `possible_agents`
(the joint order, fixed for the whole run); every column has one row per
env step:

    joint_obs_{k}             o_k          float32 [obs_dim_k]
    joint_actions_{k}         a_k          float32 [action_dim_k]  (critic's view)
    joint_rewards_{k}         r_k          float32 []
    joint_new_obs_{k}         o'_k         float32 [obs_dim_k]
    joint_terminateds_{k}     d_k          float32 []   1.0 if the episode
                                           terminated for k (a time-limit
                                           truncation is 0.0: it bootstraps)
    joint_subpolicy_{k}       k's sub-policy in this episode (policy ensembles;
                              0 without one)   int64 []
    joint_alive_{k}           1.0 if k acted at this step          float32 []
    joint_next_alive_{k}      1.0 if k is in the next joint state x' (it has
                              o'_k and did not terminate)          float32 []
    joint_target_actions_{k}  a'_k = mu'_k(o'_k)   torch, learn time only

Agents that come and go (sampler.py): where k is absent, its o_k, a_k,
r_k (and o'_k where it is not in x') are zeros, padding. With masked
critics (`strict_lockstep` False) the critic sees the alive flags beside
x and a, a'_k is zeroed where k is not in x', and rows where agent i is
absent train neither its critic nor its actor (update.py). In strict
lockstep every flag is 1.

With policy ensembles, agent i's sub-buffer D_i^(k) is the set of rows with
joint_subpolicy_{i} == k (JointReplayBuffer subsets).
"""

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch

from rllib_maddpg.env_checks import check_finite, not_lockstep

CRITIC_ACTION = "critic_action"
# Policy ensembles: the sub-policy k an agent follows in this episode (0 if K = 1).
SUBPOLICY = "subpolicy"
# Agents that come and go: whether the agent acted at this step / is in the next joint state.
ALIVE = "alive"
NEXT_ALIVE = "next_alive"


def obs_col(k: int) -> str:
    return f"joint_obs_{k}"


def actions_col(k: int) -> str:
    return f"joint_actions_{k}"


def rewards_col(k: int) -> str:
    return f"joint_rewards_{k}"


def new_obs_col(k: int) -> str:
    return f"joint_new_obs_{k}"


def terminateds_col(k: int) -> str:
    return f"joint_terminateds_{k}"


def alive_col(k: int) -> str:
    return f"joint_alive_{k}"


def next_alive_col(k: int) -> str:
    return f"joint_next_alive_{k}"


def target_actions_col(k: int) -> str:
    return f"joint_target_actions_{k}"


def subpolicy_col(k: int) -> str:
    return f"joint_subpolicy_{k}"


@dataclass(frozen=True)
class AgentSpec:
    """One agent of the joint order, as every policy needs to know it.

    Attributes:
        agent_id: the env's agent id.
        policy_id: the RLlib policy acting for this agent (one policy per agent).
        obs_dim: size of the agent's (flattened, preprocessed) observation o_k.
        action_dim: size of the agent's action as the critic sees it, a_k.
        simplex_segments: for a Box the env marks as probability vectors (MPE's
            continuous mode), the sizes of the vectors; None otherwise.
        categorical_segments: for actions sampled with Gumbel-Softmax, the size
            of each categorical component (they concatenate to a_k); None for
            tanh+Gaussian Box actions.
        num_subpolicies: K, the size of the agent's policy ensemble (1: none).
    """

    agent_id: object
    policy_id: str
    obs_dim: int
    action_dim: int
    simplex_segments: Optional[Tuple[int, ...]] = None
    categorical_segments: Optional[Tuple[int, ...]] = None
    num_subpolicies: int = 1


def replay_columns(agents: Sequence[AgentSpec]) -> Dict[str, Tuple[Tuple[int, ...], type]]:
    """Column name -> (row shape, dtype) of the joint replay buffer."""
    columns = {}
    for k, agent in enumerate(agents):
        columns[obs_col(k)] = ((agent.obs_dim,), np.float32)
        columns[actions_col(k)] = ((agent.action_dim,), np.float32)
        columns[rewards_col(k)] = ((), np.float32)
        columns[new_obs_col(k)] = ((agent.obs_dim,), np.float32)
        columns[terminateds_col(k)] = ((), np.float32)
        columns[subpolicy_col(k)] = ((), np.int64)
        columns[alive_col(k)] = ((), np.float32)
        columns[next_alive_col(k)] = ((), np.float32)
    return columns


def _flat(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float32).reshape(len(x), -1)


def attach_joint_columns(
    batch: SampleBatch,
    other_agent_batches: Optional[Dict],
    agents: Sequence[AgentSpec],
    own_index: int,
) -> SampleBatch:
    """postprocess_trajectory's work: every agent's columns into agent `own_index`'s batch.

    `other_agent_batches` maps agent id -> (policy id, policy, batch), as RLlib
    passes it. It is None while RLlib initialises a policy on a dummy batch;
    then the other agents' columns are filled with zeros of the right shape.
    """
    for column, kind in ((SampleBatch.OBS, "observation"), (SampleBatch.REWARDS, "reward")):
        check_finite(agents[own_index].agent_id, kind, batch[column], batch[SampleBatch.T])
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


def joint_rows(batch: MultiAgentBatch, agents: Sequence[AgentSpec]) -> Dict[str, np.ndarray]:
    """The joint replay rows of a sampled MultiAgentBatch, one per env step.

    Every agent's postprocessed batch carries the same joint columns; take
    them from the first agent's rows. A shared policy's batch holds the rows
    of each agent of its group (AGENT_INDEX, the joint index, tells whose).
    """
    group_size: Dict[str, int] = {}
    for agent in agents:
        group_size[agent.policy_id] = group_size.get(agent.policy_id, 0) + 1
    first = batch.policy_batches[agents[0].policy_id]
    steps = first.count // group_size[agents[0].policy_id]
    for pid, size in group_size.items():
        count = batch.policy_batches[pid].count
        if count != steps * size:
            raise not_lockstep(
                f"policy {pid!r} of {size} agent(s) sampled {count} rows where "
                f"{steps} env steps need {steps * size}"
            )
    if group_size[agents[0].policy_id] == 1:
        return {name: first[name] for name in replay_columns(agents)}
    own_rows = np.asarray(first[SampleBatch.AGENT_INDEX]) == 0
    return {name: np.asarray(first[name])[own_rows] for name in replay_columns(agents)}


def attach_target_actions(batch: Dict[str, torch.Tensor], policies: Sequence,
                          masked: bool = False) -> None:
    """Adds a'_k = mu'_k(o'_k) for every agent k, from the current target actors.

    `policies[k]` acts for agent k. Called at learn time, so the targets come
    from the target networks as they are now, not as they were when the
    transition was sampled. `masked`: a'_k is padding (zeros) where k is not
    in the next joint state.
    """
    with torch.no_grad():
        for k, policy in enumerate(policies):
            # With a policy ensemble, the target of the sub-policy that acted.
            action = policy.target_actions(
                batch[new_obs_col(k)], batch.get(subpolicy_col(k)), agent=k
            )
            batch[target_actions_col(k)] = (
                action * batch[next_alive_col(k)].unsqueeze(-1) if masked else action)


def gather(batch: Dict[str, torch.Tensor], column, indices: List[int]) -> List[torch.Tensor]:
    """[batch[column(k)] for k in indices]: one column of several agents, in joint order."""
    return [batch[column(k)] for k in indices]
