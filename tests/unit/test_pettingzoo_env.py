"""The PettingZoo wrapper (envs/pettingzoo_env.py): PettingZoo's rules for agents,
spaces, done flags, action conversion, and the errors that name the fix.

Fake ParallelEnvs drive agents that die or vanish, NaN, bad spaces.
"""

import importlib

import gymnasium as gym
import numpy as np
import pytest
from pettingzoo import ParallelEnv
from ray.tune.registry import ENV_CREATOR, _global_registry

from rllib_maddpg.envs import (
    PettingZooMultiAgentEnv,
    register_pettingzoo_env,
)

from support import random_actions, run_random_episode

pytestmark = pytest.mark.unit

BOX2 = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)


class FakeParallelEnv(ParallelEnv):
    """Two agents, zero observations, truncates after `episode_len` steps.

    `on_step(t, obs, rewards, terms, truncs)` may mutate the step's output
    dicts in place to simulate a misbehaving env.
    """

    metadata = {"name": "fake_v0"}

    def __init__(self, agents=("a", "b"), obs_spaces=None, act_spaces=None,
                 episode_len=5, on_step=None):
        self.possible_agents = list(agents)
        self.agents = list(agents)
        self._obs_spaces = obs_spaces or {a: BOX2 for a in agents}
        self._act_spaces = act_spaces or {a: gym.spaces.Discrete(3) for a in agents}
        self.episode_len = episode_len
        self.on_step = on_step
        self.received_actions = []
        self.reset_seeds = []
        self.closed = False
        self.t = 0

    def observation_space(self, agent):
        return self._obs_spaces[agent]

    def action_space(self, agent):
        return self._act_spaces[agent]

    def _obs(self):
        return {a: np.zeros(2, np.float64) for a in self.possible_agents}

    def reset(self, seed=None, options=None):
        self.t = 0
        self.agents = list(self.possible_agents)
        self.reset_seeds.append(seed)
        return self._obs(), {a: {} for a in self.possible_agents}

    def step(self, actions):
        # PettingZoo's rules: the agents that acted get obs, rewards and flags;
        # those terminated or truncated then leave `agents`.
        self.t += 1
        self.received_actions.append(actions)
        acting = list(self.agents)
        obs = {a: o for a, o in self._obs().items() if a in acting}
        infos = {a: {} for a in acting}
        rewards = {a: 1.0 for a in acting}
        terms = {a: False for a in acting}
        truncs = {a: self.t >= self.episode_len for a in acting}
        if self.on_step:
            self.on_step(self.t, obs, rewards, terms, truncs)
        self.agents = [a for a in acting if not (terms.get(a) or truncs.get(a)) and a in obs]
        return obs, rewards, terms, truncs, infos

    def render(self):
        return "frame"

    def close(self):
        self.closed = True


def test_register_pettingzoo_env_with_user_creator():
    seen_configs = []

    def creator(cfg):
        seen_configs.append(cfg)
        return FakeParallelEnv(episode_len=cfg["episode_len"])

    register_pettingzoo_env("test/fake_envs_unit", creator)
    env = _global_registry.get(ENV_CREATOR, "test/fake_envs_unit")({"episode_len": 4})
    assert isinstance(env, PettingZooMultiAgentEnv)
    assert run_random_episode(env)[0] == 4


def test_register_pettingzoo_env_rejects_aec_creator():
    mpe_simple = importlib.import_module("mpe2.simple_v3")
    register_pettingzoo_env("test/aec_envs_unit", lambda cfg: mpe_simple.env())
    creator = _global_registry.get(ENV_CREATOR, "test/aec_envs_unit")
    with pytest.raises(TypeError, match="aec_to_parallel"):
        creator({})


# ------------------------------------------------------ wrapper behaviour


def test_wrapper_keeps_env_agent_order_not_sorted():
    env = PettingZooMultiAgentEnv(FakeParallelEnv(agents=("zed", "amy")))
    assert env.possible_agents == ["zed", "amy"]
    assert list(env.observation_space.keys()) == ["zed", "amy"]
    assert list(env.action_spaces) == ["zed", "amy"]


def test_wrapper_casts_box_observations_to_float32():
    env = PettingZooMultiAgentEnv(FakeParallelEnv())
    obs, _ = env.reset()
    assert obs["a"].dtype == np.float32
    obs, *_ = env.step(random_actions(env))
    assert obs["b"].dtype == np.float32 and env.observation_spaces["b"].contains(obs["b"])


def test_wrapper_exposes_float32_box_for_float64_obs_space():
    box64 = gym.spaces.Box(-1.0, 1.0, (2,), np.float64)
    env = PettingZooMultiAgentEnv(FakeParallelEnv(obs_spaces={"a": box64, "b": box64}))
    assert env.observation_spaces["a"].dtype == np.float32
    obs, _ = env.reset()
    assert env.observation_spaces["a"].contains(obs["a"])


def test_wrapper_passes_discrete_observations_through():
    disc = {"a": gym.spaces.Discrete(4), "b": gym.spaces.Discrete(4)}
    fake = FakeParallelEnv(obs_spaces=disc)
    fake._obs = lambda: {"a": 3, "b": 1}
    env = PettingZooMultiAgentEnv(fake)
    obs, _ = env.reset()
    assert obs == {"a": 3, "b": 1}


def test_wrapper_seed_render_close_pass_through():
    fake = FakeParallelEnv()
    env = PettingZooMultiAgentEnv(fake)
    env.reset(seed=123)
    assert fake.reset_seeds == [123]
    assert env.render() == "frame"
    env.close()
    assert fake.closed


@pytest.mark.parametrize("ends, terms_expected, truncs_expected", [
    # every agent terminates: "__all__" terminated
    ({"a": "terms", "b": "terms"}, {"a": True, "b": True, "__all__": True},
     {"a": False, "b": False, "__all__": False}),
    # one terminates, one is truncated: "__all__" truncated (targets still bootstrap), own flags kept
    ({"a": "terms", "b": "truncs"}, {"a": True, "b": False, "__all__": False},
     {"a": False, "b": True, "__all__": True}),
], ids=["all_terminated", "mixed_end"])
def test_wrapper_sets_exactly_one_all_flag_at_the_end(ends, terms_expected, truncs_expected):
    def end_at_2(t, obs, rewards, terms, truncs):
        if t == 2:
            for agent, flags in ends.items():
                {"terms": terms, "truncs": truncs}[flags][agent] = True

    env = PettingZooMultiAgentEnv(FakeParallelEnv(on_step=end_at_2))
    steps, _, terms, truncs = run_random_episode(env)
    assert steps == 2
    assert terms == terms_expected and truncs == truncs_expected


def test_wrapper_step_after_episode_end_asks_for_reset():
    env = PettingZooMultiAgentEnv(FakeParallelEnv(episode_len=1))
    run_random_episode(env)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(random_actions(env))


def test_wrapper_action_adapter_and_segments_are_validated():
    with pytest.raises(ValueError, match="'c'"):
        PettingZooMultiAgentEnv(FakeParallelEnv(), action_simplex_segments={"c": [2]})
    with pytest.raises(ValueError, match="'a'"):  # Discrete action, not a Box
        PettingZooMultiAgentEnv(FakeParallelEnv(), action_simplex_segments={"a": [3]})
    with pytest.raises(TypeError, match="to_env"):
        PettingZooMultiAgentEnv(FakeParallelEnv(), action_adapters={"a": object()})


# ---------------------------------------------------------------- errors


def test_error_aec_env_names_the_fix():
    aec = importlib.import_module("mpe2.simple_v3").env()
    with pytest.raises(TypeError, match="aec_to_parallel") as err:
        PettingZooMultiAgentEnv(aec)
    assert "parallel_env(" in str(err.value)


def test_error_not_a_parallel_env():
    with pytest.raises(TypeError, match="ParallelEnv"):
        PettingZooMultiAgentEnv(gym.make("CartPole-v1"))


@pytest.mark.parametrize(
    "space_kind, space",
    [
        ("observation", gym.spaces.Text(5)),
        ("observation", gym.spaces.MultiBinary(3)),
        ("action", gym.spaces.Dict({"x": gym.spaces.Discrete(2)})),
        ("action", gym.spaces.MultiBinary(3)),
    ],
)
def test_error_unsupported_space_names_agent_and_fix(space_kind, space):
    kwargs = {"obs_spaces" if space_kind == "observation" else "act_spaces": {
        "a": BOX2 if space_kind == "observation" else gym.spaces.Discrete(3),
        "b": space,
    }}
    with pytest.raises(ValueError) as err:
        PettingZooMultiAgentEnv(FakeParallelEnv(**kwargs))
    msg = str(err.value)
    assert "'b'" in msg and space_kind in msg and type(space).__name__ in msg
    assert "latten" in msg


@pytest.mark.parametrize("space", [
    gym.spaces.Dict({"pos": BOX2, "id": gym.spaces.Discrete(3)}),
    gym.spaces.Tuple((BOX2, gym.spaces.Discrete(3))),
])
def test_wrapper_passes_dict_and_tuple_observations_through(space):
    fake = FakeParallelEnv(obs_spaces={"a": space, "b": space})
    fake._obs = lambda: {a: space.sample() for a in fake.possible_agents}
    env = PettingZooMultiAgentEnv(fake)
    assert env.observation_spaces["a"] == space
    obs, _ = env.reset()
    assert space.contains(obs["a"])


def test_wrapper_passes_on_an_agent_that_dies_and_sends_it_no_more_actions():
    def b_dies_at_3(t, obs, rewards, terms, truncs):
        if t == 3:
            terms["b"] = True

    fake = FakeParallelEnv(on_step=b_dies_at_3)
    env = PettingZooMultiAgentEnv(fake)
    steps, obs, terms, truncs = run_random_episode(env)
    assert steps == 5 and list(obs) == ["a"]
    assert terms == {"a": False, "__all__": False} and truncs == {"a": True, "__all__": True}
    assert [sorted(a) for a in fake.received_actions] == [["a", "b"]] * 3 + [["a"]] * 2


def test_wrapper_passes_on_an_agent_missing_from_the_observations():
    def b_vanishes_at_2(t, obs, rewards, terms, truncs):
        if t == 2:
            del obs["b"]

    fake = FakeParallelEnv(on_step=b_vanishes_at_2)
    env = PettingZooMultiAgentEnv(fake)
    env.reset()
    env.step(random_actions(env))
    obs, *_ = env.step(random_actions(env))
    assert list(obs) == ["a"] and env.agents == ["a"]


def test_wrapper_episode_ends_when_no_agent_is_left():
    def one_by_one(t, obs, rewards, terms, truncs):
        if t == 1:
            terms["a"] = True
        if t == 2:
            terms["b"] = True

    env = PettingZooMultiAgentEnv(FakeParallelEnv(on_step=one_by_one))
    steps, _, terms, truncs = run_random_episode(env)
    assert steps == 2 and terms == {"b": True, "__all__": True} and not truncs["__all__"]


def test_error_missing_action():
    env = PettingZooMultiAgentEnv(FakeParallelEnv())
    env.reset()
    with pytest.raises(RuntimeError, match=r"'b'.*step 1"):
        env.step({"a": 0})


def test_error_nan_observation():
    def nan_at_4(t, obs, rewards, terms, truncs):
        if t == 4:
            obs["a"][1] = np.nan

    env = PettingZooMultiAgentEnv(FakeParallelEnv(on_step=nan_at_4))
    with pytest.raises(ValueError) as err:
        run_random_episode(env)
    msg = str(err.value)
    assert "'a'" in msg and "step 4" in msg and "observation" in msg and "clip" in msg


def test_error_inf_reward():
    def inf_at_2(t, obs, rewards, terms, truncs):
        if t == 2:
            rewards["b"] = float("-inf")

    env = PettingZooMultiAgentEnv(FakeParallelEnv(on_step=inf_at_2))
    with pytest.raises(ValueError) as err:
        run_random_episode(env)
    msg = str(err.value)
    assert "'b'" in msg and "step 2" in msg and "reward" in msg


def test_error_nan_observation_at_reset_is_step_0():
    fake = FakeParallelEnv()
    fake._obs = lambda: {"a": np.zeros(2), "b": np.array([np.inf, 0.0])}
    env = PettingZooMultiAgentEnv(fake)
    with pytest.raises(ValueError, match=r"'b'.*step 0"):
        env.reset()


def test_pettingzoo_env_by_module_name_takes_the_envs_own_kwargs():
    from rllib_maddpg.envs import PettingZooEnv

    env = PettingZooEnv({"pettingzoo_env": "mpe2.simple_spread_v3", "N": 4})
    assert env.possible_agents == [f"agent_{k}" for k in range(4)]
    env = PettingZooEnv(pettingzoo_env="mpe2.simple_spread_v3", N=2)  # as RLlib builds a class path
    assert len(env.possible_agents) == 2


@pytest.mark.parametrize("env_config, message", [
    ({}, r"needs env_config\['pettingzoo_env'\]"),
    ({"pettingzoo_env": "pettingzoo.sisl.pursuit_v4"}, r"cannot be imported.*pursuit_v5.*docs/envs.md"),
    ({"pettingzoo_env": "numpy"}, r"has no parallel_env"),
])
def test_pettingzoo_env_by_module_name_errors_name_the_fix(env_config, message):
    from rllib_maddpg.envs import PettingZooEnv

    with pytest.raises(ValueError, match=message):
        PettingZooEnv(env_config)
