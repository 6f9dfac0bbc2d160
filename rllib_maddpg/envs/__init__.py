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
    "make_mpe_env",
    "register_mpe_envs",
    "register_pettingzoo_env",
]
