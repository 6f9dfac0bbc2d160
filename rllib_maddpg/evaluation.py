"""Decentralized execution: run trained policies in an env, each agent on its own observation.

Used by `rllib evaluate` and the paper-reproduction benchmark. Each agent's
action comes from its own policy's `compute_single_action` on its own
observation; nothing is shared between agents at execution time.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

import numpy as np

from rllib_maddpg.envs import env_agent_ids


@dataclass
class EvaluationResult:
    agent_ids: List[Any]
    returns: np.ndarray  # [episodes, agents], summed over each episode
    lengths: List[int]
    task_metrics: Dict[str, List[float]] = field(default_factory=dict)  # name -> per episode
    frames: List[np.ndarray] = field(default_factory=list)  # the first episode, if recorded

    def mean_task_metrics(self) -> Dict[str, float]:
        return {name: float(np.mean(values)) for name, values in self.task_metrics.items()}


def run_algorithm_episodes(algo, env, episodes: int, **kwargs) -> "EvaluationResult":
    """run_episodes with a MADDPG algorithm's own policies, each agent acting with its policy."""
    policies = {a.policy_id: algo.get_policy(a.policy_id) for a in algo.agents}
    agent_to_policy = {a.agent_id: a.policy_id for a in algo.agents}
    return run_episodes(policies, agent_to_policy, env, episodes, **kwargs)


def env_action(policy, action):
    """What the env takes, from what the policy returned (RLlib's normalize/clip rules)."""
    from ray.rllib.utils.spaces.space_utils import clip_action, unsquash_action

    if policy.config.get("normalize_actions"):
        return unsquash_action(action, policy.action_space_struct)
    if policy.config.get("clip_actions"):
        return clip_action(action, policy.action_space_struct)
    return action


def run_episodes(
    policies: Mapping[str, Any],
    agent_to_policy: Mapping[Any, str],
    env,
    episodes: int,
    *,
    explore: bool = False,
    seed: Optional[int] = None,
    subpolicy: Optional[int] = None,
    record_first: bool = False,
) -> EvaluationResult:
    """Plays `episodes` episodes; returns per-agent returns and the env's task metrics.

    Policy ensembles act with sub-policy `subpolicy`, or draw one per agent per
    episode when it is None. With `record_first`, the first episode's
    `env.render()` frames are kept.
    """
    agent_ids = env_agent_ids(env)
    ensembles = {pid: p.num_subpolicies for pid, p in policies.items()
                 if getattr(p, "num_subpolicies", 1) > 1}
    rng = np.random.default_rng(seed)
    result = EvaluationResult(agent_ids, np.zeros((episodes, len(agent_ids))), [])
    for episode in range(episodes):
        record = record_first and episode == 0
        obs, _ = env.reset(seed=None if seed is None else seed + episode)
        drawn = {pid: subpolicy if subpolicy is not None else int(rng.integers(k))
                 for pid, k in ensembles.items()}
        if record:
            result.frames.append(env.render())
        steps = 0
        while True:
            actions = {}
            for agent_id, agent_obs in obs.items():  # the agents the env has now
                pid = agent_to_policy[agent_id]
                policy = policies[pid]
                # agent_index: the joint index, which a shared policy's agent ids need.
                inputs = {"obs": agent_obs, "agent_index": agent_ids.index(agent_id)}
                if pid in drawn:
                    inputs["subpolicy"] = drawn[pid]
                action, _, _ = policy.compute_single_action(input_dict=inputs, explore=explore)
                actions[agent_id] = env_action(policy, action)
            obs, rewards, terminateds, truncateds, _ = env.step(actions)
            # An agent that finished gets no more actions (its final observation is not for acting).
            obs = {a: o for a, o in obs.items() if not (terminateds.get(a) or truncateds.get(a))}
            steps += 1
            for k, agent_id in enumerate(agent_ids):
                result.returns[episode, k] += float(rewards.get(agent_id, 0.0))
            if record:
                result.frames.append(env.render())
            if terminateds.get("__all__") or truncateds.get("__all__"):
                break
        result.lengths.append(steps)
        if hasattr(env, "episode_metrics"):
            for name, value in env.episode_metrics().items():
                result.task_metrics.setdefault(name, []).append(float(value))
    return result
