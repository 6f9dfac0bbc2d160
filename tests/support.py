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

    strict_lockstep = True  # every agent acts every step: the critics take no alive flags

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


class BatchedStampEnv(StampEnv):
    """A StampEnv that offers `batched`: StampCopies of itself, copy b with episodes
    of episode_len + b steps (so copies end at different steps)."""

    def batched(self, num_envs, seed=None):
        return StampCopies([StampEnv({"episode_len": self.episode_len + b, "terminate": self.terminate})
                            for b in range(num_envs)])


class StampCopies:
    """B StampEnvs behind the batched-env protocol of the lockstep sampler (sampler.py):
    arrays in and out, ended copies restarted in the same step (final_obs)."""

    def __init__(self, envs):
        self.envs = envs
        self.possible_agents = envs[0].possible_agents
        self._metrics = None

    def _stack(self, per_copy):
        return {a: np.stack([x[a] for x in per_copy]) for a in self.possible_agents}

    def reset(self, seed=None):
        return self._stack([env.reset(seed=None if seed is None else seed + b)[0]
                            for b, env in enumerate(self.envs)])

    def step(self, actions):
        obs, final, rewards, term, trunc, metrics = [], [], [], [], [], []
        for b, env in enumerate(self.envs):
            o, r, te, tr, _ = env.step({a: actions[a][b] for a in self.possible_agents})
            final.append(o)
            if te["__all__"] or tr["__all__"]:
                metrics.append({"length": float(env._t)})
                o = env.reset()[0]
            else:
                metrics.append({})
            obs.append(o), rewards.append(r), term.append(te["__all__"]), trunc.append(tr["__all__"])
        self._metrics = metrics
        return (self._stack(obs), self._stack(rewards), np.array(term), np.array(trunc),
                {"final_obs": self._stack(final)})

    def episode_metrics(self):
        return self._metrics


def build_policies(env=StampEnv, **overrides):
    """MADDPG's policies for `env`, built directly (no Ray), in joint agent order.

    Returns (config, policies) where policies[k] acts for agent k.
    """
    from rllib_maddpg import MADDPGConfig
    from rllib_maddpg.policy import MADDPGTorchPolicy

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
        policy_class = spec.policy_class or MADDPGTorchPolicy  # None: RLlib fills in MADDPG's
        built[agent.policy_id] = policy_class(spec.observation_space, spec.action_space, policy_config)
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

    from rllib_maddpg.core import joint as jb

    rng = np.random.default_rng(seed)
    batch = {}
    for name, (shape, dtype) in jb.replay_columns(agents).items():
        values = rng.normal(size=(batch_size,) + shape).astype(dtype)
        if name.startswith("joint_terminateds"):
            values = (values > 0).astype(dtype)
        if name.startswith(("joint_alive", "joint_next_alive")):
            values = np.ones_like(values)
        batch[name] = torch.from_numpy(values)
    return batch


class TeamEnv(MultiAgentEnv):
    """Three agents: "a" and "b" alike (Box(3) observations, Box(2) actions), so
    they can share a policy, and "c" with a Discrete(3) action. Agent k's
    observation at step t is [k, t, stamp]; its reward is k + 0.1 t."""

    strict_lockstep = True

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


class ComeAndGoEnv(MultiAgentEnv):
    """Agents that finish early, die, leave and arrive late, on a fixed script.

    Agents 0, 1, 2 (Box(3) observations [k, t, stamp], Box(1) actions), one
    4-step episode: agent 0 stays throughout (truncated with the episode at
    t = 4); agent 1 terminates (dies) at step 2; agent 2 is absent at reset,
    arrives with its first observation after step 1, and is truncated alone
    (leaves) at step 3. Reward of agent k at step t: k + 0.1 t. The env
    refuses actions for agents it does not have, as gymnasium envs warn.
    """

    def __init__(self, config=None):
        super().__init__()
        self.possible_agents = [0, 1, 2]
        self.observation_spaces = {k: gym.spaces.Box(-np.inf, np.inf, (3,), np.float32) for k in range(3)}
        self.action_spaces = {k: gym.spaces.Box(-1.0, 1.0, (1,), np.float32) for k in range(3)}
        self.received = []
        self._t, self._stamp = 0, 0.0

    def _obs_of(self, ids):
        return {k: np.array([k, self._t, self._stamp], np.float32) for k in ids}

    def reset(self, *, seed=None, options=None):
        self._t, self._stamp = 0, float(np.random.default_rng(seed).integers(1, 1000))
        self.agents = [0, 1]
        return self._obs_of(self.agents), {}

    def step(self, action_dict):
        assert sorted(action_dict) == sorted(self.agents), (action_dict, self.agents)
        self.received.append(sorted(action_dict))
        acting = list(self.agents)
        self._t += 1
        t = self._t
        rewards = {k: k + 0.1 * t for k in acting}
        terminateds = {k: k == 1 and t == 2 for k in acting}
        truncateds = {k: (k == 2 and t == 3) or (k == 0 and t == 4) for k in acting}
        seen = list(acting) + ([2] if t == 1 and 2 not in acting else [])
        self.agents = [k for k in seen if not (terminateds.get(k) or truncateds.get(k))]
        terminateds["__all__"] = False
        truncateds["__all__"] = t >= 4
        return self._obs_of(seen), rewards, terminateds, truncateds, {}


class DyingReachEnv(MultiAgentEnv):
    """Three agents each steer a point on the plane to their own goal; agent
    "doomed" dies (terminates) at step `death_step` (default 5) of every
    25-step episode, the survivors "a" and "b" go on to the time limit.

    Observation of agent k: (goal_k - pos_k, pos_k); action Box(-1, 1, (2,)),
    pos_k += 0.1 a_k (kept in [-1.5, 1.5]); reward -|goal_k - pos_k|. Random play: about -33 per
    survivor per episode in the first 10k env steps; a trained MADDPG: about -6.
    """

    def __init__(self, config=None):
        config = dict(config or {})
        super().__init__()
        self.possible_agents = ["a", "b", "doomed"]
        self.death_step = config.get("death_step", 5)
        self.observation_spaces = {a: gym.spaces.Box(-3, 3, (4,), np.float32) for a in self.possible_agents}
        self.action_spaces = {a: gym.spaces.Box(-1, 1, (2,), np.float32) for a in self.possible_agents}
        self._rng = np.random.default_rng()

    def _obs(self, ids):
        return {a: np.concatenate([self.goal[k] - self.pos[k], self.pos[k]]).astype(np.float32)
                for k, a in enumerate(self.possible_agents) if a in ids}

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self.t = 0
        self.pos = self._rng.uniform(-1, 1, (3, 2))
        self.goal = self._rng.uniform(-1, 1, (3, 2))
        self.agents = list(self.possible_agents)
        return self._obs(self.agents), {}

    def step(self, action_dict):
        assert sorted(action_dict) == sorted(self.agents), (action_dict, self.agents)
        acting = list(self.agents)
        for k, a in enumerate(self.possible_agents):
            if a in action_dict:
                self.pos[k] = np.clip(self.pos[k] + 0.1 * np.clip(action_dict[a], -1, 1), -1.5, 1.5)
        self.t += 1
        rewards = {a: -float(np.linalg.norm(self.goal[k] - self.pos[k]))
                   for k, a in enumerate(self.possible_agents) if a in acting}
        terminateds = {a: a == "doomed" and self.t == self.death_step for a in acting}
        over = self.t >= 25
        truncateds = {a: over for a in acting}
        self.agents = [a for a in acting if not (terminateds[a] or truncateds[a])]
        terminateds["__all__"], truncateds["__all__"] = False, over
        return self._obs(acting), rewards, terminateds, truncateds, {}


def gradient_step(learner, name, batch, actor_batches=None):
    """One step of optimizer `name` ("inference", "critic", "actor") of core/update.py
    on a minibatch: its loss, backward, clip, step; returns the stats."""
    from rllib_maddpg.core import update

    loss, info = update.LOSSES[name](learner, batch, actor_batches)
    return {**info, **update.gradient_step(learner, name, loss)}


def random_actions(env):
    """A random action for each agent the env has now."""
    return {a: env.action_spaces[a].sample() for a in env.agents}


def run_random_episode(env, max_steps=1000):
    """Plays one episode with random actions: (steps, last obs, terminateds, truncateds)."""
    env.reset(seed=0)
    for t in range(1, max_steps + 1):
        obs, rew, terms, truncs, infos = env.step(random_actions(env))
        if terms["__all__"] or truncs["__all__"]:
            return t, obs, terms, truncs
    raise AssertionError("episode did not end")


def params(module):
    """A copy of a module's parameters (to compare after an update)."""
    return [p.detach().clone() for p in module.parameters()]


def same(before, module):
    """Whether a module's parameters still equal the copy `before`."""
    import torch

    return all(torch.equal(a, b) for a, b in zip(before, module.parameters()))
