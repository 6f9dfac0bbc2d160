"""Envs as users bring them, registered the way README shows (docs/envs.md).

Importing this module registers each env under a name; `CASES` lists what
each needs installed. Used by tests/integration/test_user_envs.py, in the
test process and in the fresh processes that restore checkpoints, and by
benchmarks/user_envs.py.
"""

import importlib.util

import gymnasium as gym
import numpy as np
from pettingzoo import ParallelEnv
from ray.rllib.env.multi_agent_env import MultiAgentEnv
from ray.tune.registry import register_env

from rllib_maddpg import register_pettingzoo_env


class DictObsParallelEnv(ParallelEnv):
    """A PettingZoo parallel env with Dict observations: two agents steer a 1-D
    point toward their goal; each sees {"pos": Box(1), "goal": Discrete(3)}."""

    metadata = {"name": "dict_obs_v0"}

    def __init__(self, max_cycles=20):
        self.possible_agents = ["left", "right"]
        self.agents = []
        self.max_cycles = max_cycles
        self._space = gym.spaces.Dict({"pos": gym.spaces.Box(-2, 2, (1,), np.float32),
                                       "goal": gym.spaces.Discrete(3)})
        self._rng = np.random.default_rng()

    def observation_space(self, agent):
        return self._space

    def action_space(self, agent):
        return gym.spaces.Box(-1, 1, (1,), np.float32)

    def _obs(self):
        return {a: {"pos": self.pos[k:k + 1].copy(), "goal": int(self.goal[k])}
                for k, a in enumerate(self.possible_agents)}

    def reset(self, seed=None, options=None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self.agents = list(self.possible_agents)
        self.t = 0
        self.pos = np.zeros(2, np.float32)
        self.goal = self._rng.integers(0, 3, 2)
        return self._obs(), {a: {} for a in self.agents}

    def step(self, actions):
        self.t += 1
        for k, a in enumerate(self.possible_agents):
            self.pos[k] = np.clip(self.pos[k] + 0.2 * float(np.asarray(actions[a])[0]), -2, 2)
        dist = np.abs(self.pos - (self.goal - 1.0))
        rewards = {a: -float(dist[k]) for k, a in enumerate(self.possible_agents)}
        done = self.t >= self.max_cycles
        obs = self._obs()
        flags = {a: done for a in self.agents}
        if done:
            self.agents = []
        return obs, rewards, {a: False for a in flags}, flags, {a: {} for a in flags}


class ImageObsEnv(MultiAgentEnv):
    """A native env with image-shaped Box observations: each of two agents sees a
    (6, 6, 2) grid (channel 0: itself, channel 1: its goal) and moves on it."""

    def __init__(self, config=None):
        super().__init__()
        self.possible_agents = self.agents = ["a0", "a1"]
        self.observation_spaces = {a: gym.spaces.Box(0, 1, (6, 6, 2), np.float32) for a in self.agents}
        self.action_spaces = {a: gym.spaces.Discrete(5) for a in self.agents}
        self._rng = np.random.default_rng()

    def _obs(self):
        out = {}
        for k, a in enumerate(self.possible_agents):
            grid = np.zeros((6, 6, 2), np.float32)
            grid[self.pos[k][0], self.pos[k][1], 0] = 1.0
            grid[self.goal[k][0], self.goal[k][1], 1] = 1.0
            out[a] = grid
        return out

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self.t = 0
        self.pos = self._rng.integers(0, 6, (2, 2))
        self.goal = self._rng.integers(0, 6, (2, 2))
        return self._obs(), {}

    def step(self, action_dict):
        moves = np.array([[0, 0], [1, 0], [-1, 0], [0, 1], [0, -1]])
        for k, a in enumerate(self.possible_agents):
            self.pos[k] = np.clip(self.pos[k] + moves[int(action_dict[a])], 0, 5)
        self.t += 1
        done = self.t >= 20
        rewards = {a: -float(np.abs(self.pos[k] - self.goal[k]).sum())
                   for k, a in enumerate(self.possible_agents)}
        return (self._obs(), rewards, {"__all__": False},
                {**{a: done for a in self.possible_agents}, "__all__": done}, {})


def _pettingzoo(module, name, **kwargs):
    def creator(env_config):
        mod = importlib.import_module(module)
        return getattr(mod, name).parallel_env(**{**kwargs, **env_config})
    return creator


def _multi_agent_cartpole(env_config):
    from ray.rllib.examples.envs.classes.multi_agent import MultiAgentCartPole
    return MultiAgentCartPole({"num_agents": 2, **env_config})


register_pettingzoo_env("user/pursuit_v5", _pettingzoo("pettingzoo.sisl", "pursuit_v5"))
register_pettingzoo_env("user/multiwalker_v9", _pettingzoo("pettingzoo.sisl", "multiwalker_v9"))
register_pettingzoo_env("user/waterworld_v4", _pettingzoo("pettingzoo.sisl", "waterworld_v4"))
register_pettingzoo_env("user/knights_archers_zombies_v11",
                        _pettingzoo("pettingzoo.butterfly", "knights_archers_zombies_v11"))
register_pettingzoo_env("user/dict_obs", lambda env_config: DictObsParallelEnv(**env_config))
register_env("user/multi_agent_cartpole", _multi_agent_cartpole)
register_env("user/image_obs", lambda env_config: ImageObsEnv(env_config))


def _has(*modules):
    """None if every module imports, else the reason to skip."""
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as e:  # ImportError, or a physics package that fails to load
            return f"{module} is not importable ({type(e).__name__}: {e})"
    return None


def missing(env_name):
    """Why `env_name` cannot be built here (None: it can)."""
    needs = {
        "user/pursuit_v5": ("pettingzoo.sisl.pursuit_v5",),
        "user/multiwalker_v9": ("Box2D", "pettingzoo.sisl.multiwalker_v9"),
        "user/waterworld_v4": ("pymunk", "pettingzoo.sisl.waterworld_v4"),
        "user/knights_archers_zombies_v11": ("pygame", "pettingzoo.butterfly.knights_archers_zombies_v11"),
    }.get(env_name, ())
    reason = _has(*needs)
    if reason and "waterworld" in env_name:
        reason += ("; waterworld_v4 is in PettingZoo 1.25 (not 1.26+) and needs pymunk<7: "
                   "benchmarks/setup_waterworld_venv.sh makes such a venv")
    return reason
