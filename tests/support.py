"""Test support: a small deterministic env, and policies built without Ray.

`StampEnv` is a native RLlib MultiAgentEnv with three heterogeneous agents.
Agent k's observation at step t is [k, t, episode_stamp, 0...], so a test can
check that a joint row holds the same step of the same episode for every
agent. Integer agent ids, as a native env may use.
"""

import gymnasium as gym
import numpy as np

from ray.rllib.env.multi_agent_env import MultiAgentEnv

OBS_DIMS = (3, 4, 5)
ACTION_SPACES = (
    gym.spaces.Box(-2.0, 2.0, (2,), np.float32),
    gym.spaces.Discrete(3),
    gym.spaces.MultiDiscrete([2, 3]),
)


class StampEnv(MultiAgentEnv):
    """env_config: episode_len (default 7), terminate (True: the episode ends
    by termination; False: by truncation), reward_scale."""

    def __init__(self, config=None):
        config = dict(config or {})
        super().__init__()
        self.episode_len = config.get("episode_len", 7)
        self.terminate = config.get("terminate", False)
        self.possible_agents = [0, 1, 2]
        self.agents = list(self.possible_agents)
        self.observation_spaces = {
            k: gym.spaces.Box(-np.inf, np.inf, (d,), np.float32) for k, d in enumerate(OBS_DIMS)
        }
        self.action_spaces = dict(enumerate(ACTION_SPACES))
        self._rng = np.random.default_rng(0)
        self._t = 0
        self._stamp = 0.0

    def _obs(self):
        obs = {}
        for k, d in enumerate(OBS_DIMS):
            o = np.zeros(d, np.float32)
            o[:3] = (k, self._t, self._stamp)
            obs[k] = o
        return obs

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._t = 0
        self._stamp = float(self._rng.integers(1, 1_000_000))
        return self._obs(), {}

    def step(self, action_dict):
        assert sorted(action_dict) == self.possible_agents, action_dict
        self._t += 1
        done = self._t >= self.episode_len
        rewards = {k: float(k + 0.1 * self._t) for k in self.possible_agents}
        terminateds = {k: done and self.terminate for k in self.possible_agents}
        truncateds = {k: done and not self.terminate for k in self.possible_agents}
        terminateds["__all__"] = done and self.terminate
        truncateds["__all__"] = done and not self.terminate
        return self._obs(), rewards, terminateds, truncateds, {}


def build_policies(env=StampEnv, **overrides):
    """MADDPG's policies for `env`, built directly (no Ray), in joint agent order.

    Returns (config, policies) where policies[k] acts for agent k.
    """
    from rllib_maddpg import MADDPGConfig

    config = MADDPGConfig().environment(env, env_config=overrides.pop("env_config", {}))
    if "policies" in overrides:  # e.g. a shared policy: multi_agent() reads sets and mapping fns
        config.multi_agent(policies=overrides.pop("policies"),
                           policy_mapping_fn=overrides.pop("policy_mapping_fn"))
    config.update_from_dict(overrides)
    config.validate()
    built = {}  # a shared policy is one object for all its agents
    for agent in config._maddpg_agents:
        if agent.policy_id in built:
            continue
        spec = config.policies[agent.policy_id]
        policy_config = config.to_dict()
        policy_config.update(spec.config or {})
        policy_config["__policy_id"] = agent.policy_id
        built[agent.policy_id] = spec.policy_class(spec.observation_space, spec.action_space, policy_config)
    return config, [built[agent.policy_id] for agent in config._maddpg_agents]


def numpy_mlp(net, x):
    """A ReLU MLP (nn.Sequential of Linear layers) in NumPy, output column 0: Q(x)."""
    import torch

    layers = [m for m in net if isinstance(m, torch.nn.Linear)]
    for n, layer in enumerate(layers):
        x = x @ layer.weight.detach().numpy().T + layer.bias.detach().numpy()
        if n < len(layers) - 1:
            x = np.maximum(x, 0.0)
    return x[:, 0]


def random_joint_batch(agents, batch_size=32, seed=0):
    """A joint minibatch (torch tensors) of random values with the replay schema."""
    import torch

    from rllib_maddpg import joint_batch as jb

    rng = np.random.default_rng(seed)
    batch = {}
    for name, (shape, dtype) in jb.replay_columns(agents).items():
        values = rng.normal(size=(batch_size,) + shape).astype(dtype)
        if name.startswith("joint_terminateds"):
            values = (values > 0).astype(dtype)
        batch[name] = torch.from_numpy(values)
    return batch


class TeamEnv(MultiAgentEnv):
    """Three agents: "a" and "b" alike (Box(3) observations, Box(2) actions), so
    they can share a policy, and "c" with a Discrete(3) action. Agent k's
    observation at step t is [k, t, stamp]; its reward is k + 0.1 t."""

    def __init__(self, config=None):
        super().__init__()
        self.possible_agents = self.agents = ["a", "b", "c"]
        box = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
        self.observation_spaces = {a: box for a in self.possible_agents}
        move = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.action_spaces = {"a": move, "b": move, "c": gym.spaces.Discrete(3)}
        self._t, self._stamp = 0, 0.0

    def _obs(self):
        return {a: np.array([k, self._t, self._stamp], np.float32) for k, a in enumerate(self.possible_agents)}

    def reset(self, *, seed=None, options=None):
        self._t, self._stamp = 0, float(np.random.default_rng(seed).integers(1, 1000))
        return self._obs(), {}

    def step(self, action_dict):
        assert sorted(action_dict) == self.possible_agents, action_dict
        self._t += 1
        done = self._t >= 6
        rewards = {a: k + 0.1 * self._t for k, a in enumerate(self.possible_agents)}
        return (self._obs(), rewards, {"__all__": False},
                {**{a: done for a in self.possible_agents}, "__all__": done}, {})


def team_mapping(agent_id, *args, **kwargs):
    """TeamEnv's agents "a" and "b" share the policy "team"; "c" has its own."""
    return "team" if agent_id in ("a", "b") else "c"


class DiscreteObsEnv(MultiAgentEnv):
    """Two agents (ids 0 and 1) with Discrete / MultiDiscrete observations.

    Agent 0 sees the step count as Discrete(5); agent 1 sees [t % 2, t % 3]
    as MultiDiscrete([2, 3]). Reward: 1 when agent 0's action equals t % 3.
    """

    def __init__(self, config=None):
        super().__init__()
        self.possible_agents = [0, 1]
        self.agents = [0, 1]
        self.observation_spaces = {0: gym.spaces.Discrete(5), 1: gym.spaces.MultiDiscrete([2, 3])}
        self.action_spaces = {0: gym.spaces.Discrete(3), 1: gym.spaces.Box(-1, 1, (1,), np.float32)}
        self._t = 0

    def _obs(self):
        return {0: self._t % 5, 1: np.array([self._t % 2, self._t % 3])}

    def reset(self, *, seed=None, options=None):
        self._t = 0
        return self._obs(), {}

    def step(self, action_dict):
        reward = float(action_dict[0] == self._t % 3)
        self._t += 1
        done = self._t >= 5
        return (self._obs(), {0: reward, 1: reward}, {"__all__": False},
                {0: done, 1: done, "__all__": done}, {})


class OldStyleEnv(MultiAgentEnv):
    """A native env written as RLlib's older examples are: agents in `_agent_ids`
    (no `possible_agents`), one `observation_space` and `action_space` for all.
    Agent "b" is paid for matching agent "a"'s last action (observed as an int)."""

    def __init__(self, config=None):
        super().__init__()
        self._agent_ids = {"b", "a"}
        self.observation_space = gym.spaces.Discrete(3)
        self.action_space = gym.spaces.Discrete(3)
        self._t, self._last = 0, 0

    def reset(self, *, seed=None, options=None):
        self._t, self._last = 0, 0
        return {"a": self._t % 3, "b": self._last}, {}

    def step(self, action_dict):
        reward = float(action_dict["b"] == self._last)
        self._last = int(action_dict["a"])
        self._t += 1
        done = self._t >= 6
        obs = {"a": self._t % 3, "b": self._last}
        return (obs, {"a": reward, "b": reward}, {"__all__": False},
                {"a": done, "b": done, "__all__": done}, {})


class StructObsEnv(MultiAgentEnv):
    """Dict and Tuple observations: agent 0 sees {"pos": Box(2), "phase": Discrete(3)},
    agent 1 (Tuple(Box(1), MultiDiscrete([2, 2]))). Box actions."""

    def __init__(self, config=None):
        super().__init__()
        self.possible_agents = self.agents = [0, 1]
        self.observation_spaces = {
            0: gym.spaces.Dict({"pos": gym.spaces.Box(-1, 1, (2,), np.float32),
                                "phase": gym.spaces.Discrete(3)}),
            1: gym.spaces.Tuple((gym.spaces.Box(-1, 1, (1,), np.float32),
                                 gym.spaces.MultiDiscrete([2, 2]))),
        }
        self.action_spaces = {k: gym.spaces.Box(-1, 1, (1,), np.float32) for k in (0, 1)}
        self._t = 0

    def _obs(self):
        pos = np.array([np.sin(self._t), np.cos(self._t)], np.float32)
        return {0: {"pos": pos, "phase": self._t % 3},
                1: (pos[:1].copy(), np.array([self._t % 2, (self._t // 2) % 2]))}

    def reset(self, *, seed=None, options=None):
        self._t = 0
        return self._obs(), {}

    def step(self, action_dict):
        self._t += 1
        done = self._t >= 5
        reward = -float(abs(action_dict[0][0] - action_dict[1][0]))
        return (self._obs(), {0: reward, 1: reward}, {"__all__": False},
                {0: done, 1: done, "__all__": done}, {})
