"""Multi-agent environments for rllib_maddpg.

Importing this package registers the MPE scenarios with Ray Tune as
``mpe/<scenario>`` (e.g. ``"mpe/simple_spread"``), so they can be named in an
RLlib config, and VMAS's ports of them as ``vmas/<scenario>`` (optional extra
``vmas``; envs/vmas_env.py). Registration only stores a small creator; mpe2
or vmas is imported when an env is actually built.
"""

import functools

from ray.tune.registry import register_env

from rllib_maddpg.envs.mpe import MPE_SCENARIOS, make_mpe_env, register_mpe_envs
from rllib_maddpg.envs.pettingzoo_env import (
    ActionAdapter,
    MultiDiscreteToDiscrete,
    PettingZooEnv,
    PettingZooMultiAgentEnv,
    register_pettingzoo_env,
)



def _make_vmas_env(scenario: str, env_config=None):
    from rllib_maddpg.envs.vmas_env import VmasEnv

    return VmasEnv(scenario, env_config)


def register_vmas_env(scenario: str) -> None:
    """Registers ``vmas/<scenario>`` for a VMAS scenario name (vmas is imported when
    the env is built; envs/vmas_env.py says which env_config keys it takes)."""
    register_env(f"vmas/{scenario}", functools.partial(_make_vmas_env, scenario))


register_mpe_envs()
for _scenario in MPE_SCENARIOS:  # VMAS's ports of the nine MPE scenarios
    register_vmas_env(_scenario)

__all__ = [
    "ActionAdapter",
    "MPE_SCENARIOS",
    "MultiDiscreteToDiscrete",
    "PettingZooEnv",
    "PettingZooMultiAgentEnv",
    "env_agent_ids",
    "make_mpe_env",
    "register_mpe_envs",
    "register_pettingzoo_env",
    "register_vmas_env",
]


def env_agent_ids(env) -> list:
    """The joint agent order of a multi-agent env.

    The env's `possible_agents`, unless they carry no order: RLlib's
    `ParallelPettingZooEnv` and envs that set only `_agent_ids` (a set)
    get `possible_agents = list(a set)`, whose order changes from process to
    process; then the PettingZoo env's own `possible_agents` if there is one,
    else the ids sorted (by str), so that one env and seed give one run.
    """
    possible = list(getattr(env, "possible_agents", None) or [])
    pettingzoo_order = list(getattr(getattr(env, "par_env", None), "possible_agents", None) or [])
    if pettingzoo_order and (not possible or set(possible) == set(pettingzoo_order)):
        return pettingzoo_order
    ids = getattr(env, "_agent_ids", None)
    from_a_set = isinstance(ids, (set, frozenset)) and possible == list(ids)
    if possible and not from_a_set:
        return possible
    ids = possible or ids or getattr(env, "agents", None) or []
    return sorted(ids, key=str)
