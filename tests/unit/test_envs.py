"""Tests for rllib_maddpg.envs: the PettingZoo wrapper and the MPE registry.

Fake ParallelEnvs drive the error paths (agents leaving early, NaN, bad
spaces); real mpe2 scenarios check spaces, action encodings and episode ends.
"""

import importlib

import gymnasium as gym
import numpy as np
import pytest
from pettingzoo import ParallelEnv
from ray.rllib.env.env_context import EnvContext
from ray.rllib.utils.pre_checks.env import check_multiagent_environments
from ray.tune.registry import ENV_CREATOR, _global_registry

from rllib_maddpg.envs import (
    MPE_SCENARIOS,
    MultiDiscreteToDiscrete,
    PettingZooMultiAgentEnv,
    make_mpe_env,
    register_pettingzoo_env,
)
from rllib_maddpg.envs.mpe import _SCENARIO_MODULES

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


def _act(env):
    return {a: env.action_spaces[a].sample() for a in env.agents}


def _run_episode(env, max_steps=1000):
    env.reset(seed=0)
    for t in range(1, max_steps + 1):
        obs, rew, terms, truncs, infos = env.step(_act(env))
        if terms["__all__"] or truncs["__all__"]:
            return t, obs, terms, truncs
    raise AssertionError("episode did not end")


# ----------------------------------------------------------------- MPE


@pytest.mark.parametrize("continuous", [True, False], ids=["continuous", "discrete"])
@pytest.mark.parametrize("scenario", MPE_SCENARIOS)
def test_mpe_scenario_full_episode(scenario, continuous):
    env = make_mpe_env(scenario, {"continuous_actions": continuous})
    raw = importlib.import_module(_SCENARIO_MODULES[scenario]).parallel_env()
    assert env.possible_agents == raw.possible_agents == env.agents
    assert list(env.observation_space.keys()) == env.possible_agents
    assert list(env.action_space.keys()) == env.possible_agents

    obs, infos = env.reset(seed=0)
    assert list(obs) == env.possible_agents
    for t in range(1, 26):
        obs, rewards, terms, truncs, infos = env.step(_act(env))
        for agent in env.possible_agents:
            assert env.observation_spaces[agent].contains(obs[agent])
            assert np.isscalar(rewards[agent])
        ended = terms["__all__"] or truncs["__all__"]
        assert ended == (t == 25), f"episode end flag wrong at step {t}"
    assert truncs["__all__"] and not terms["__all__"]
    assert all(truncs[a] for a in env.possible_agents)
    env.close()


@pytest.mark.parametrize("continuous", [True, False], ids=["continuous", "discrete"])
@pytest.mark.parametrize("scenario", MPE_SCENARIOS)
def test_mpe_env_steps_exactly_like_mpe2_parallel_env(scenario, continuous):
    """We step mpe2's raw scenario without PettingZoo's OrderEnforcing and
    ClipOutOfBounds wrappers (for speed): observations, rewards and episode
    ends must equal mpe2's own parallel_env's, including for out-of-bound
    Box actions (clipped by us instead of by ClipOutOfBounds)."""
    import warnings

    kwargs = {"continuous_actions": continuous, "max_cycles": 10}
    ours = make_mpe_env(scenario, kwargs)
    theirs = importlib.import_module(_SCENARIO_MODULES[scenario]).parallel_env(**kwargs)
    rng = np.random.default_rng(0)
    for episode in range(2):
        obs, _ = ours.reset(seed=episode)
        expected, _ = theirs.reset(seed=episode)
        for t in range(10):
            env_actions, our_actions = {}, {}
            for agent in theirs.possible_agents:
                space = theirs.action_space(agent)
                if isinstance(space, gym.spaces.Box):  # some out of bounds
                    a = rng.uniform(-0.5, 1.5, space.shape).astype(space.dtype)
                    env_actions[agent] = our_actions[agent] = a
                else:
                    env_actions[agent] = int(rng.integers(space.n))
                    adapter = ours.action_adapters.get(agent)
                    our_actions[agent] = (env_actions[agent] if adapter is None
                                          else _from_flat(env_actions[agent], adapter))
            for agent in theirs.possible_agents:
                np.testing.assert_array_equal(obs[agent], expected[agent], err_msg=f"{agent} t={t}")
            obs, rewards, terms, truncs, _ = ours.step(our_actions)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # ClipOutOfBounds warns on every clip
                expected, exp_rewards, exp_terms, exp_truncs, _ = theirs.step(env_actions)
            for agent in theirs.possible_agents:
                assert rewards[agent] == exp_rewards[agent], (agent, t)
                assert terms[agent] == exp_terms[agent] and truncs[agent] == exp_truncs[agent]
        assert truncs["__all__"]


def _from_flat(index, adapter):
    """The MultiDiscrete action that `adapter` sends to the env as Discrete `index`."""
    (action,) = [a for a in np.ndindex(*adapter.space.nvec) if adapter.to_env(a) == index]
    return np.array(action, dtype=np.int64)


def test_mpe_heterogeneous_observation_sizes():
    env = make_mpe_env("simple_adversary")
    sizes = {a: env.observation_spaces[a].shape for a in env.possible_agents}
    assert sizes == {"adversary_0": (8,), "agent_0": (10,), "agent_1": (10,)}
    env = make_mpe_env("simple_speaker_listener")
    assert env.observation_spaces["speaker_0"].shape == (3,)
    assert env.observation_spaces["listener_0"].shape == (11,)


def test_mpe_seeded_reset_is_reproducible():
    env = make_mpe_env("simple_spread")
    first, _ = env.reset(seed=7)
    second, _ = env.reset(seed=7)
    for agent in env.possible_agents:
        np.testing.assert_array_equal(first[agent], second[agent])
        assert first[agent].dtype == np.float32


@pytest.mark.parametrize(
    "scenario, expected",
    [
        ("simple_reference", {"agent_0": [5, 10], "agent_1": [5, 10]}),
        ("simple_speaker_listener", {"speaker_0": [3], "listener_0": [5]}),
        ("simple_crypto", {"eve_0": [4], "bob_0": [4], "alice_0": [4]}),
        ("simple_spread", {"agent_0": [5], "agent_1": [5], "agent_2": [5]}),
    ],
)
def test_mpe_simplex_segments(scenario, expected):
    env = make_mpe_env(scenario)
    assert env.action_simplex_segments == expected
    for agent, segments in expected.items():
        assert env.action_spaces[agent].shape == (sum(segments),)


def test_mpe_world_comm_segments_and_discrete_spaces():
    cont = make_mpe_env("simple_world_comm")
    assert cont.action_simplex_segments["leadadversary_0"] == [5, 4]
    assert cont.action_simplex_segments["adversary_0"] == [5]

    disc = make_mpe_env("simple_world_comm", {"continuous_actions": False})
    assert disc.action_spaces["leadadversary_0"] == gym.spaces.MultiDiscrete([5, 4])
    assert disc.action_spaces["adversary_0"] == gym.spaces.Discrete(5)
    assert set(disc.action_simplex_segments.values()) == {None}


def test_mpe_discrete_immovable_speaker_keeps_discrete():
    env = make_mpe_env("simple_speaker_listener", {"continuous_actions": False})
    assert env.action_spaces["speaker_0"] == gym.spaces.Discrete(3)
    assert env.action_spaces["listener_0"] == gym.spaces.Discrete(5)


def test_mpe_reference_multidiscrete_reaches_env_as_move_plus_5_comm(monkeypatch):
    env = make_mpe_env("simple_reference", {"continuous_actions": False})
    assert env.action_spaces["agent_0"] == gym.spaces.MultiDiscrete([5, 10])
    received = []
    original_step = env.par_env.step

    def recording_step(actions):
        received.append(actions)
        return original_step(actions)

    monkeypatch.setattr(env.par_env, "step", recording_step)
    env.reset(seed=0)
    env.step({"agent_0": np.array([2, 7]), "agent_1": np.array([4, 0])})

    assert received[0] == {"agent_0": 2 + 5 * 7, "agent_1": 4}
    # mpe2 decodes it back: agent_0 moves right (+x) and says word 7.
    world = env.par_env.unwrapped.world
    assert world.agents[0].action.u[0] > 0 and world.agents[0].action.u[1] == 0
    assert np.argmax(world.agents[0].action.c) == 7


def test_multidiscrete_to_discrete_mixed_radix():
    adapter = MultiDiscreteToDiscrete([5, 4, 3])
    assert adapter.space == gym.spaces.MultiDiscrete([5, 4, 3])
    assert adapter.to_env([3, 2, 1]) == 3 + 5 * 2 + 20 * 1
    codes = {adapter.to_env([i, j, k]) for i in range(5) for j in range(4) for k in range(3)}
    assert codes == set(range(60))


def test_mpe_float64_actions_reach_env_as_float32(monkeypatch):
    env = make_mpe_env("simple")
    received = []
    original_step = env.par_env.step
    monkeypatch.setattr(
        env.par_env, "step", lambda a: received.append(a) or original_step(a)
    )
    env.reset(seed=0)
    env.step({"agent_0": np.full(5, 0.2, dtype=np.float64)})
    assert received[0]["agent_0"].dtype == np.float32


def test_mpe_env_passes_rllib_env_precheck():
    check_multiagent_environments(make_mpe_env("simple_adversary"))


def test_mpe_unknown_scenario_lists_valid_ones():
    with pytest.raises(ValueError, match="simple_spread") as err:
        make_mpe_env("simple_nope")
    assert "simple_nope" in str(err.value)


def test_mpe_unknown_kwarg_lists_accepted_ones():
    with pytest.raises(ValueError) as err:
        make_mpe_env("simple_spread", {"n_agents": 3})
    msg = str(err.value)
    assert "n_agents" in msg and "local_ratio" in msg and "max_cycles" in msg


# ------------------------------------------------------------- registry


def test_registry_has_mpe_envs_and_builds_from_env_config():
    creator = _global_registry.get(ENV_CREATOR, "mpe/simple_spread")
    env = creator({"max_cycles": 10})
    assert isinstance(env, PettingZooMultiAgentEnv)
    steps, *_ = _run_episode(env)
    assert steps == 10


def test_registry_accepts_env_context():
    creator = _global_registry.get(ENV_CREATOR, "mpe/simple_tag")
    ctx = EnvContext({"max_cycles": 3, "num_good": 2}, worker_index=1, num_workers=2)
    env = creator(ctx)
    assert len(env.possible_agents) == 5
    assert _run_episode(env)[0] == 3


def test_registry_unknown_kwarg_is_clear():
    creator = _global_registry.get(ENV_CREATOR, "mpe/simple_adversary")
    with pytest.raises(ValueError, match="bogus"):
        creator({"bogus": 1})


def test_register_pettingzoo_env_with_user_creator():
    seen_configs = []

    def creator(cfg):
        seen_configs.append(cfg)
        return FakeParallelEnv(episode_len=cfg["episode_len"])

    register_pettingzoo_env("test/fake_envs_unit", creator)
    env = _global_registry.get(ENV_CREATOR, "test/fake_envs_unit")({"episode_len": 4})
    assert isinstance(env, PettingZooMultiAgentEnv)
    assert _run_episode(env)[0] == 4


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
    obs, *_ = env.step(_act(env))
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


def test_wrapper_all_terminated_sets_terminated_all():
    def terminate_at_2(t, obs, rewards, terms, truncs):
        if t == 2:
            terms.update(a=True, b=True)

    env = PettingZooMultiAgentEnv(FakeParallelEnv(on_step=terminate_at_2))
    steps, _, terms, truncs = _run_episode(env)
    assert steps == 2
    assert terms == {"a": True, "b": True, "__all__": True}
    assert truncs == {"a": False, "b": False, "__all__": False}


def test_wrapper_mixed_end_sets_truncated_all_and_keeps_agent_flags():
    def mixed_at_2(t, obs, rewards, terms, truncs):
        if t == 2:
            terms["a"] = True
            truncs["b"] = True

    env = PettingZooMultiAgentEnv(FakeParallelEnv(on_step=mixed_at_2))
    steps, _, terms, truncs = _run_episode(env)
    assert steps == 2
    assert terms == {"a": True, "b": False, "__all__": False}
    assert truncs == {"a": False, "b": True, "__all__": True}


def test_wrapper_step_after_episode_end_asks_for_reset():
    env = PettingZooMultiAgentEnv(FakeParallelEnv(episode_len=1))
    _run_episode(env)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(_act(env))


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
    steps, obs, terms, truncs = _run_episode(env)
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
    env.step(_act(env))
    obs, *_ = env.step(_act(env))
    assert list(obs) == ["a"] and env.agents == ["a"]


def test_wrapper_episode_ends_when_no_agent_is_left():
    def one_by_one(t, obs, rewards, terms, truncs):
        if t == 1:
            terms["a"] = True
        if t == 2:
            terms["b"] = True

    env = PettingZooMultiAgentEnv(FakeParallelEnv(on_step=one_by_one))
    steps, _, terms, truncs = _run_episode(env)
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
        _run_episode(env)
    msg = str(err.value)
    assert "'a'" in msg and "step 4" in msg and "observation" in msg and "clip" in msg


def test_error_inf_reward():
    def inf_at_2(t, obs, rewards, terms, truncs):
        if t == 2:
            rewards["b"] = float("-inf")

    env = PettingZooMultiAgentEnv(FakeParallelEnv(on_step=inf_at_2))
    with pytest.raises(ValueError) as err:
        _run_episode(env)
    msg = str(err.value)
    assert "'b'" in msg and "step 2" in msg and "reward" in msg


def test_error_nan_observation_at_reset_is_step_0():
    fake = FakeParallelEnv()
    fake._obs = lambda: {"a": np.zeros(2), "b": np.array([np.inf, 0.0])}
    env = PettingZooMultiAgentEnv(fake)
    with pytest.raises(ValueError, match=r"'b'.*step 0"):
        env.reset()


def _listener_step(env, move):
    """Steps simple_speaker_listener with a silent speaker and the listener's
    `move` (a [no-op, left, right, down, up] probability vector); returns the
    listener's position and velocity before and after, and its reward."""
    world = env.par_env.unwrapped.world
    listener = world.agents[1]
    p0, v0 = listener.state.p_pos.copy(), listener.state.p_vel.copy()
    actions = {"speaker_0": np.array([1.0, 0.0, 0.0], np.float32),
               "listener_0": np.asarray(move, np.float32)}
    _, rewards, _, _, _ = env.step(actions)
    return p0, v0, listener.state.p_pos.copy(), listener.state.p_vel.copy(), rewards["listener_0"]


def test_paper_physics_updates_velocity_then_position_by_hand():
    """Hand-computed: the listener (mass 1, no collisions) pushes right with
    action [0, 0, 1, 0, 0], force F = 5 * (a2 - a1) = (5, 0); dt 0.1, damping 0.25."""
    dt, damping, force = 0.1, 0.25, np.array([5.0, 0.0])
    for paper in (True, False):
        env = make_mpe_env("simple_speaker_listener", {"paper_physics": paper})
        env.reset(seed=3)
        for t in range(3):
            p0, v0, p1, v1, reward = _listener_step(env, [0, 0, 1, 0, 0])
            v_expected = v0 * (1 - damping) + force * dt  # max_speed is None for the listener
            np.testing.assert_allclose(v1, v_expected, rtol=1e-12)
            if paper:  # position moves with the new velocity
                np.testing.assert_allclose(p1, p0 + v_expected * dt, rtol=1e-12)
            else:  # mpe2: with the old one
                np.testing.assert_allclose(p1, p0 + v0 * dt, rtol=1e-12)
            if t == 0:
                # From rest, the first action moves the agent only in the paper's order.
                assert np.allclose(v0, 0)
                assert bool(np.linalg.norm(p1 - p0) > 0.04) is paper
            # The reward is computed after the step, from the new position.
            world = env.par_env.unwrapped.world
            goal = world.agents[0].goal_b
            assert reward == pytest.approx(-np.sum(np.square(p1 - goal.state.p_pos)))


def test_paper_physics_caps_speed_before_moving():
    world_env = make_mpe_env("simple_tag", {"paper_physics": True})
    world_env.reset(seed=0)
    world = world_env.par_env.unwrapped.world
    prey = [a for a in world.agents if not a.adversary][0]
    prey.state.p_vel = np.array([10.0, 0.0])
    p0 = prey.state.p_pos.copy()
    forces = [None] * len(world.entities)
    world.integrate_state(forces)
    v = np.array([10.0 * (1 - world.damping), 0.0])
    v = v / np.linalg.norm(v) * prey.max_speed
    np.testing.assert_allclose(prey.state.p_vel, v)
    np.testing.assert_allclose(prey.state.p_pos, p0 + v * world.dt)


def test_paper_physics_flag_is_checked():
    with pytest.raises(ValueError, match="paper_physics"):
        make_mpe_env("simple", {"paper_physics": "yes"})


def test_original_adversary_reward_is_minus_squared_distance():
    for original in (True, False):
        env = make_mpe_env("simple_adversary", {"original_adversary_reward": original})
        env.reset(seed=1)
        actions = {a: env.action_spaces[a].sample() for a in env.possible_agents}
        _, rewards, _, _, _ = env.step(actions)
        world = env.par_env.unwrapped.world
        adversary = world.agents[0]
        d = np.linalg.norm(adversary.state.p_pos - adversary.goal_a.state.p_pos)
        assert rewards["adversary_0"] == pytest.approx(-d * d if original else -d)
        # The good agents' reward is mpe2's either way: adversary's distance - nearest good one's.
        good = [a for a in world.agents if not a.adversary]
        nearest = min(np.linalg.norm(a.state.p_pos - adversary.goal_a.state.p_pos) for a in good)
        assert rewards["agent_0"] == pytest.approx(d - nearest)
    with pytest.raises(ValueError, match="only simple_adversary"):
        make_mpe_env("simple_tag", {"original_adversary_reward": True})


def _step_with_random_actions(env, seed=1):
    env.reset(seed=seed)
    actions = {a: env.action_spaces[a].sample() for a in env.possible_agents}
    return env.step(actions)[1]


def test_original_team_reward_on_speaker_listener_is_twice_mpe2s():
    mpe2_rewards = _step_with_random_actions(make_mpe_env("simple_speaker_listener"))
    team_rewards = _step_with_random_actions(
        make_mpe_env("simple_speaker_listener", {"original_team_reward": True}))
    # Same seed, same actions: the original paid both agents r_speaker + r_listener.
    assert mpe2_rewards["speaker_0"] == pytest.approx(mpe2_rewards["listener_0"])
    for agent in ("speaker_0", "listener_0"):
        assert team_rewards[agent] == pytest.approx(2 * mpe2_rewards["listener_0"])


def test_original_team_reward_on_spread_by_hand():
    env = make_mpe_env("simple_spread", {"N": 3, "original_team_reward": True})
    env.reset(seed=0)
    world = env.par_env.unwrapped.world
    # Agents 0 and 1 overlap (size 0.15 each), agent 2 alone; landmarks at known places.
    for agent, pos in zip(world.agents, ([0.0, 0.0], [0.1, 0.0], [1.0, 1.0])):
        agent.state.p_pos = np.array(pos)
        agent.state.p_vel = np.zeros(2)
    for landmark, pos in zip(world.landmarks, ([0.0, 0.0], [0.0, 0.5], [1.0, 0.5])):
        landmark.state.p_pos = np.array(pos)
    scenario = env.par_env.unwrapped.scenario
    coverage = 0.0 + 0.5 + 0.5  # nearest agent to each landmark: 0, 0 and 2
    # Each agent "collides" with itself as in the original; agents 0 and 1 also with each other.
    collisions = 2 + 2 + 1
    expected = -3 * coverage - collisions
    for agent in world.agents:
        assert scenario.reward(agent, world) == pytest.approx(expected)


def test_original_team_reward_on_reference_is_minus_summed_squared_distances():
    env = make_mpe_env("simple_reference", {"original_team_reward": True})
    _step_with_random_actions(env)
    world = env.par_env.unwrapped.world
    expected = -sum(np.sum(np.square(a.goal_a.state.p_pos - a.goal_b.state.p_pos))
                    for a in world.agents)
    scenario = env.par_env.unwrapped.scenario
    for agent in world.agents:
        assert scenario.reward(agent, world) == pytest.approx(expected)


def test_original_team_reward_is_checked():
    with pytest.raises(ValueError, match="only simple_speaker_listener, simple_reference"):
        make_mpe_env("simple_tag", {"original_team_reward": True})
    with pytest.raises(ValueError, match="original_team_reward"):
        make_mpe_env("simple_spread", {"original_team_reward": 1})
    with pytest.raises(ValueError, match="Remove local_ratio"):
        make_mpe_env("simple_spread", {"original_team_reward": True, "local_ratio": 0.5})


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
