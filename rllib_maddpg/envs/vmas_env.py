"""VMAS scenarios stepped B copies at a time through VMAS's own batched API (optional extra).

VMAS (Bettini et al. 2022, ``pip install 'rllib-maddpg[vmas]'``, i.e.
``vmas==1.5.2``) simulates B copies of a scenario as torch tensors, so one
``step`` moves all of them. Its ports of the nine MPE scenarios follow the
originals in spirit, not step for step (simple_spread: 14 observation entries
against mpe2's 18, force actions in [-1, 1]^2 instead of probability vectors,
other physics), so they are their own envs, ``vmas/<scenario>``, not a backend
of ``mpe/<scenario>`` (for that: JaxMARL, envs/jaxmarl_mpe.py).

``config.environment("vmas/simple_spread", env_config={"n_agents": 3})``
(the nine MPE ports are registered; any other VMAS scenario with
``register_vmas_env("navigation")``). ``env_config``: ``max_steps`` (the
episode's time limit: default 25 for the MPE ports, required for the others,
whose episodes have none of their own), ``continuous_actions`` (default
True), and the scenario's own keyword arguments. VMAS runs on the CPU here
(env runners act on CPU) and its actions are clamped to their bounds.

RLlib builds one ``VmasEnv`` (one copy) per sub-env; MADDPG's lockstep sampler
asks the first for ``batched(num_envs, seed)`` and steps all of a runner's
copies in one call (rllib_maddpg/sampler.py). Episodes end by VMAS's
``terminated`` (a scenario's own end) or ``truncated`` (``max_steps``), per
copy; an ended copy restarts within the step (``reset_at``), its last
observations in ``info["final_obs"]``. Every agent acts at every step.

Nothing in ``rllib_maddpg`` imports vmas until a ``vmas/`` env is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rllib_maddpg.envs.batched import OneCopyEnv

try:
    import vmas
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "vmas/<scenario> envs need VMAS: `pip install 'rllib-maddpg[vmas]'` or "
        f"`pip install vmas==1.5.2`. Import failed with: {err}"
    ) from err

__all__ = ["VMAS_MPE_SCENARIOS", "VmasBatched", "VmasEnv"]

VMAS_MPE_SCENARIOS = tuple(vmas.mpe_scenarios)
MPE_MAX_STEPS = 25  # the paper's episode length


def _settings(scenario: str, env_config: Mapping[str, Any] | None) -> dict:
    config = dict(env_config or {})
    if "max_steps" not in config:
        if scenario not in VMAS_MPE_SCENARIOS:
            raise ValueError(
                f"env_config for vmas/{scenario} needs max_steps (the episode's time limit): "
                "VMAS episodes have none of their own outside the MPE ports.")
        config["max_steps"] = MPE_MAX_STEPS
    for key in ("num_envs", "device", "dict_spaces", "terminated_truncated", "seed", "wrapper"):
        if key in config:
            raise ValueError(f"env_config key {key!r} is set by the plugin for vmas/{scenario}: remove it.")
    return config


def _gym_space(space) -> gym.Space:
    """VMAS's spaces (gym or gymnasium) as gymnasium spaces."""
    if isinstance(space, gym.Space):
        return space
    name = type(space).__name__
    if name == "Box":
        return gym.spaces.Box(space.low, space.high, space.shape, np.float32)
    if name == "Discrete":
        return gym.spaces.Discrete(int(space.n))
    if name == "MultiDiscrete":
        return gym.spaces.MultiDiscrete(np.asarray(space.nvec))
    raise TypeError(f"unsupported VMAS space {space!r}")


class VmasBatched:
    """B copies of a VMAS scenario behind the lockstep sampler's batched-env protocol.

    ``reset(seed)`` -> ``{agent: float32 [B, obs_dim]}``; ``step({agent: [B, act_dim]
    | [B]})`` -> obs, rewards ``{agent: float32 [B]}``, terminated and truncated
    ``bool [B]``, info ``{"final_obs": obs of the copies as they ended, or None}``.
    """

    def __init__(self, scenario: str, num_envs: int, env_config: Mapping[str, Any] | None = None,
                 seed: int | None = None):
        config = _settings(scenario, env_config)
        self.scenario, self.num_envs = scenario, int(num_envs)
        self.max_steps = int(config["max_steps"])
        self.env = vmas.make_env(scenario, num_envs=self.num_envs, device="cpu", seed=seed,
                                 dict_spaces=True, terminated_truncated=True, clamp_actions=True,
                                 **config)
        self.possible_agents = [agent.name for agent in self.env.agents]
        self.observation_spaces = {a: _gym_space(s) for a, s in self.env.observation_space.spaces.items()}
        self.action_spaces = {a: _gym_space(s) for a, s in self.env.action_space.spaces.items()}

    def reset(self, seed: int | None = None) -> dict[str, np.ndarray]:
        if seed is not None:
            self.env.seed(int(seed))
        return self._numpy(self.env.reset())

    def step(self, actions: Mapping[str, Any]):
        with torch.no_grad():
            obs, rewards, terminated, truncated, _ = self.env.step(
                {a: torch.as_tensor(np.asarray(actions[a])) for a in self.possible_agents})
            obs = self._numpy(obs)
            terminated, truncated = terminated.numpy().copy(), truncated.numpy().copy()
            final = None
            ended = np.flatnonzero(terminated | truncated)
            if len(ended):
                final = obs
                if len(ended) == self.num_envs:  # all at once (the time limit): one reset
                    restarted = self.env.reset()
                else:
                    for i in ended:
                        restarted = self.env.reset_at(int(i), return_observations=True)
                obs = self._numpy(restarted)
        rewards = {a: rewards[a].numpy().astype(np.float32, copy=True) for a in self.possible_agents}
        return obs, rewards, terminated, truncated, {"final_obs": final}

    def _numpy(self, obs) -> dict[str, np.ndarray]:
        return {a: obs[a].numpy().astype(np.float32, copy=True).reshape(self.num_envs, -1)
                for a in self.possible_agents}


class VmasEnv(OneCopyEnv):
    """One copy of a VMAS scenario as an RLlib MultiAgentEnv (what ``vmas/<scenario>``
    builds; envs/batched.py); ``batched(num_envs, seed)`` gives the B-copy env the
    lockstep sampler steps."""

    def __init__(self, scenario: str, env_config: Mapping[str, Any] | None = None):
        self._scenario, self._config = scenario, dict(env_config or {})
        super().__init__(VmasBatched(scenario, 1, self._config))

    def batched(self, num_envs: int, seed: int | None = None) -> VmasBatched:
        """B = num_envs copies of this env; the lockstep sampler resets them (seed)."""
        return VmasBatched(self._scenario, num_envs, self._config, seed=seed)
