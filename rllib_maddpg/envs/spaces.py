"""Observations as MADDPG reads them: one flat float vector o_i per agent.

The actor mu_i(o_i) and the critic's x = (o_1..o_N) take vectors. An env's
own observation may be a Box of any rank (an image-shaped (7, 7, 3), a
(27, 5) table), a Discrete, or a Dict/Tuple of those. Each becomes a vector
as RLlib's preprocessors make it: a Box is flattened in C order, a Discrete
one-hot, Dict/Tuple parts flattened and concatenated. One function here per
job, used by every reader (the lockstep sampler, the policy acting on an
env's raw observation, the agent resolution that sizes the networks).
"""

from typing import Any, Callable

import gymnasium as gym
import numpy as np

from ray.rllib.models.catalog import ModelCatalog


def flat_obs_dim(space: gym.Space, agent_id: Any = None) -> int:
    """Size of o_i as the actor reads it (see the module docstring)."""
    if isinstance(space, gym.spaces.Box):
        return int(np.prod(space.shape, dtype=np.int64))
    try:
        return int(ModelCatalog.get_preprocessor_for_space(space).size)
    except Exception as e:  # RLlib raises assorted errors for spaces it cannot flatten
        raise ValueError(
            f"agent {agent_id!r} has the observation space {space}, which MADDPG cannot "
            "flatten into a vector: use Box (any shape), Discrete, MultiDiscrete, or "
            f"Dict/Tuple spaces of those ({type(e).__name__}: {e})."
        ) from e


def obs_flattener(space: gym.Space) -> Callable[[Any], np.ndarray]:
    """A function: one raw observation of `space` -> its float32 vector of size `flat_obs_dim`."""
    if isinstance(space, gym.spaces.Box):
        return _ravel_float32
    flat_obs_dim(space)  # the clear error for a space that cannot be flattened
    return ModelCatalog.get_preprocessor_for_space(space).transform


def _ravel_float32(obs: Any) -> np.ndarray:
    return np.asarray(obs, dtype=np.float32).reshape(-1)
