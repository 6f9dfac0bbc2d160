"""Multi-agent environments for rllib_maddpg.

Importing this package registers the MPE scenarios with Ray Tune as
``mpe/<scenario>`` (e.g. ``"mpe/simple_spread"``), so they can be named in an
RLlib config. Registration only stores a small creator; mpe2 is imported when
an env is actually built.
"""

from rllib_maddpg.envs.mpe import MPE_SCENARIOS, make_mpe_env, register_mpe_envs
from rllib_maddpg.envs.pettingzoo_env import (
    ActionAdapter,
    MultiDiscreteToDiscrete,
    PettingZooMultiAgentEnv,
    register_pettingzoo_env,
)

register_mpe_envs()

__all__ = [
    "ActionAdapter",
    "MPE_SCENARIOS",
    "MultiDiscreteToDiscrete",
    "PettingZooMultiAgentEnv",
    "env_agent_ids",
    "make_mpe_env",
    "register_mpe_envs",
    "register_pettingzoo_env",
]


def env_agent_ids(env) -> list:
    """The joint agent order of a multi-agent env: its `possible_agents`, else
    (envs written the older way, like RLlib's own examples, with `_agent_ids`
    or `agents` only) the sorted ids."""
    if getattr(env, "possible_agents", None):
        return list(env.possible_agents)
    ids = getattr(env, "_agent_ids", None) or getattr(env, "agents", None) or []
    return sorted(ids, key=str)
