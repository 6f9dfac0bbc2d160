"""Batched envs: B copies of a multi-agent env stepped in one call.

The protocol MADDPG's lockstep sampler steps (rllib_maddpg/sampler.py), met by
the JaxMARL MPE backend (envs/jaxmarl_mpe.py) and VMAS (envs/vmas_env.py):

    possible_agents                 the agents, every one acting at every step
    reset(seed) -> obs              obs: {agent: float32 [B, obs_dim]}
    step({agent: [B, ...] actions}) -> obs, rewards {agent: [B]}, terminated [B],
                                       truncated [B], info
    episode_metrics()               optional: one dict per copy, for the copies
                                    that ended at the last step

A copy whose episode ends restarts within the same step: its first
observations are in `obs`, its last in `info["final_obs"]` (None when no
copy ended).

RLlib builds its envs one copy per sub-env: `OneCopyEnv` is one copy of a
batched env as an RLlib MultiAgentEnv (correct with RLlib's own sampler, and
what gives RLlib the spaces); its `batched(num_envs, seed)` is what the
lockstep sampler steps instead, all of a runner's copies at once.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from ray.rllib.env.multi_agent_env import MultiAgentEnv


class OneCopyEnv(MultiAgentEnv):
    """One copy (B = 1) of a batched env; subclasses give `batched(num_envs, seed)`."""

    strict_lockstep = True  # every agent acts at every step until the episode ends

    def __init__(self, one):
        self._one = one
        self.possible_agents = list(one.possible_agents)
        self.agents = list(self.possible_agents)
        self._agent_ids = set(self.possible_agents)
        self.observation_spaces = dict(one.observation_spaces)
        self.action_spaces = dict(one.action_spaces)
        self.observation_space = gym.spaces.Dict(self.observation_spaces)
        self.action_space = gym.spaces.Dict(self.action_spaces)
        self._over = True
        self._metrics: dict[str, float] = {}
        super().__init__()

    def batched(self, num_envs: int, seed: int | None = None):
        raise NotImplementedError

    def get_observation_space(self, agent_id):
        return self.observation_spaces[agent_id]

    def get_action_space(self, agent_id):
        return self.action_spaces[agent_id]

    def reset(self, *, seed=None, options=None):
        self._over, self._metrics = False, {}
        return {a: o[0] for a, o in self._one.reset(seed=seed).items()}, {}

    def step(self, action_dict):
        if self._over:
            raise RuntimeError("step() on an env whose episode is over (or never reset): call reset().")
        actions = {a: np.asarray(action_dict[a])[None] for a in self.possible_agents}
        obs, rewards, terminated, truncated, info = self._one.step(actions)
        if info["final_obs"] is not None:  # the episode ended (and the copy restarted): its last obs
            obs, self._over = info["final_obs"], True
            if hasattr(self._one, "episode_metrics"):
                self._metrics = self._one.episode_metrics()[0]
        flags = [{**{a: bool(x[0]) for a in self.possible_agents}, "__all__": bool(x[0])}
                 for x in (terminated, truncated)]
        return ({a: o[0] for a, o in obs.items()}, {a: float(r[0]) for a, r in rewards.items()},
                flags[0], flags[1], {})

    def episode_metrics(self) -> dict[str, float]:
        """The task metrics of the episode that ended last (empty if none or the env has none)."""
        return dict(self._metrics)
