"""Distributed genetic MADDPG (population.py): a population of MADDPG members that share critics.

Imported when used, not by `import rllib_maddpg`: `from rllib_maddpg import
GeneticMADDPG`, YAML `run: GeneticMADDPG` and `tune.Tuner("GeneticMADDPG")`
import it on first use (rllib_maddpg/__init__.py). Checkpoints written when
this was the module rllib_maddpg/genetic.py name its classes and functions
`rllib_maddpg.genetic.<name>`: every one is re-exported here so they load.
"""

from rllib_maddpg.genetic.population import (  # noqa: F401  (old checkpoints name these here)
    BEST_MEMBER,
    CRITIC_SYNCED,
    GENETIC_KEYS,
    MEMBERS,
    NUM_CRITIC_SYNCS,
    PLACEMENT_STRATEGIES,
    STEPS_PER_MEMBER,
    SYNC_METRIC_VALUE,
    SYNC_SOURCE,
    GeneticMADDPG,
    GeneticMADDPGConfig,
    Member,
    _as_config,
    _float,
    _pack,
    _unpack,
    agent_policies,
    best_member,
    critic_sync,
    get_critic_weights,
    member_bundle,
    read_metric,
    set_critic_weights,
)

__all__ = [
    "GeneticMADDPG",
    "GeneticMADDPGConfig",
    "agent_policies",
    "best_member",
    "critic_sync",
    "get_critic_weights",
    "member_bundle",
    "read_metric",
    "set_critic_weights",
]
