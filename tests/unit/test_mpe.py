"""The MPE registry (envs/mpe.py): the nine scenarios, their action encodings,
step-for-step equality with mpe2's parallel_env, the paper's physics and the
original rewards."""

import importlib

import gymnasium as gym
import numpy as np
import pytest
from ray.rllib.env.env_context import EnvContext
from ray.rllib.utils.pre_checks.env import check_multiagent_environments
from ray.tune.registry import ENV_CREATOR, _global_registry

from rllib_maddpg.envs import (
    MPE_SCENARIOS,
    MultiDiscreteToDiscrete,
    PettingZooMultiAgentEnv,
    make_mpe_env,
)
from rllib_maddpg.envs.mpe import _SCENARIO_MODULES

from support import random_actions, run_random_episode

pytestmark = pytest.mark.unit


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
        obs, rewards, terms, truncs, infos = env.step(random_actions(env))
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
    steps, *_ = run_random_episode(env)
    assert steps == 10


def test_registry_accepts_env_context():
    creator = _global_registry.get(ENV_CREATOR, "mpe/simple_tag")
    ctx = EnvContext({"max_cycles": 3, "num_good": 2}, worker_index=1, num_workers=2)
    env = creator(ctx)
    assert len(env.possible_agents) == 5
    assert run_random_episode(env)[0] == 3


def test_registry_unknown_kwarg_is_clear():
    creator = _global_registry.get(ENV_CREATOR, "mpe/simple_adversary")
    with pytest.raises(ValueError, match="bogus"):
        creator({"bogus": 1})


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
