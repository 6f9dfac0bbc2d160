"""The joint row: what the centralized critic reads for one env step, for every agent.

MADDPG's critic Q_i(x, a_1..a_N) needs, for every env step, every agent's
observation, action, reward, next observation and termination; the actors
act on their own observations only. One row of the replay buffer D holds one
env step of all agents, in the joint agent order (agent k is the k-th agent
of the env's `possible_agents`, fixed for the whole run). Plain numpy and
torch: the RLlib adapter that builds rows from sampled batches is
`rllib_maddpg/joint_batch.py`.

Columns (one row per env step):

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

With n-step returns (`n_step` n > 1; core/nstep.py), r_k is the discounted
sum of k's rewards over the next k <= n steps of the episode, o'_k, d_k and
the next-alive flag are those k steps ahead, and one more column holds the
discount of the bootstrap:

    joint_discount            gamma^k      float32 []

Agents that come and go: where k is absent, its o_k, a_k, r_k (and o'_k
where it is not in x') are zeros, padding. With masked critics
(`strict_lockstep` False) the critic sees the alive flags beside x and a,
a'_k is zeroed where k is not in x', and rows where agent i is absent train
neither its critic nor its actor (update.py). In strict lockstep every flag
is 1.

With policy ensembles, agent i's sub-buffer D_i^(k) is the set of rows with
joint_subpolicy_{i} == k (JointReplayBuffer subsets).
"""

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

CRITIC_ACTION = "critic_action"
# Policy ensembles: the sub-policy k an agent follows in this episode (0 if K = 1).
SUBPOLICY = "subpolicy"
# Agents that come and go: whether the agent acted at this step / is in the next joint state.
ALIVE = "alive"
NEXT_ALIVE = "next_alive"
# n-step returns: gamma^k, the discount of the row's bootstrap (only with n_step > 1).
DISCOUNT_COL = "joint_discount"


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


def replay_columns(agents: Sequence[AgentSpec], n_step: int = 1) -> Dict[str, Tuple[Tuple[int, ...], type]]:
    """Column name -> (row shape, dtype) of the joint replay buffer (n_step > 1: with joint_discount)."""
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
    if n_step > 1:
        columns[DISCOUNT_COL] = ((), np.float32)
    return columns


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
