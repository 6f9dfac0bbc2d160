"""rllib_maddpg: MADDPG (Lowe et al. 2017) for Ray RLlib, in PyTorch.

Importing the package registers the trainables "MADDPG" (YAML `run: MADDPG`,
`tune.Tuner("MADDPG")`) and "GeneticMADDPG" (a population that shares its best
critics), and the envs `mpe/<scenario>`, with Ray Tune. rllib_maddpg.genetic is
imported on first use: by Tune's lookup of "GeneticMADDPG", or by
`rllib_maddpg.GeneticMADDPG` / `GeneticMADDPGConfig`.
"""

import logging

from ray.tune.registry import register_trainable

from rllib_maddpg.config import MADDPGConfig
from rllib_maddpg.maddpg import MADDPG
from rllib_maddpg.policy import MADDPGTorchPolicy
from rllib_maddpg import envs  # noqa: F401  (registers the mpe/<scenario> envs)
from rllib_maddpg.envs import PettingZooEnv, register_pettingzoo_env
from rllib_maddpg.ray_compat import register_lazy_trainable

__version__ = "0.1.0"

register_trainable("MADDPG", MADDPG)
register_lazy_trainable("GeneticMADDPG", "rllib_maddpg.genetic")

_LAZY = {"GeneticMADDPG": "rllib_maddpg.genetic", "GeneticMADDPGConfig": "rllib_maddpg.genetic"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _not_about_our_policy(record: logging.LogRecord) -> bool:
    # RLlib warns at every checkpoint that a policy class outside its own
    # registry has no "durable name"; ours is stored by reference and restores fine.
    return not ("durable policy name" in record.getMessage() and "MADDPGTorchPolicy" in record.getMessage())


logging.getLogger("ray.rllib.policy.policy").addFilter(_not_about_our_policy)

__all__ = [
    "GeneticMADDPG",
    "GeneticMADDPGConfig",
    "MADDPG",
    "MADDPGConfig",
    "MADDPGTorchPolicy",
    "PettingZooEnv",
    "register_pettingzoo_env",
]
