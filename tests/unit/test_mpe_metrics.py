"""The paper's task metrics (envs/mpe_metrics.py) on hand-built MPE world states."""

from types import SimpleNamespace as NS

import numpy as np
import pytest

from rllib_maddpg.envs import mpe_metrics as m

pytestmark = pytest.mark.unit


def entity(x, y, size=0.05, **kw):
    return NS(state=NS(p_pos=np.array([x, y], float), c=kw.pop("c", None)), size=size, **kw)


def test_speaker_listener_reach_uses_the_final_distance():
    goal = entity(0.5, 0.0, size=0.04)
    listener = entity(0.6, 0.0, size=0.075)  # 0.1 < 0.115: touching
    world = NS(agents=[NS(goal_a=listener, goal_b=goal), listener], landmarks=[goal])
    out = m.SpeakerListenerMetrics().result(world)
    assert out == {"target_reached": 1.0, "target_distance": pytest.approx(0.1),
                   "target_reached_r04": 1.0}
    listener.state.p_pos = np.array([0.8, 0.0])  # 0.3: not touching, within 0.4
    out = m.SpeakerListenerMetrics().result(world)
    assert (out["target_reached"], out["target_reached_r04"]) == (0.0, 1.0)
    assert out["target_distance"] == pytest.approx(0.3)
    listener.state.p_pos = np.array([0.9, 0.0])  # 0.4: not within (strict)
    assert m.SpeakerListenerMetrics().result(world)["target_reached_r04"] == 0.0


def test_adversary_success_of_each_side():
    goal = entity(0.0, 0.0, size=0.08)
    good = [entity(0.1, 0.0, adversary=False, goal_a=goal), entity(2.0, 0.0, adversary=False, goal_a=goal)]
    adversary = entity(0.5, 0.5, adversary=True, goal_a=goal)
    world = NS(agents=[adversary] + good, landmarks=[goal])
    assert m.AdversaryMetrics().result(world) == {
        "good_distance": pytest.approx(0.1), "adversary_distance": pytest.approx(np.sqrt(0.5)),
        "good_success": 1.0, "adversary_success": 0.0, "success_difference": 1.0,
        "good_success_r04": 1.0, "adversary_success_r04": 0.0}
    adversary.state.p_pos = np.array([0.0, 0.15])  # < 2 * 0.08
    assert m.AdversaryMetrics().result(world)["adversary_success"] == 1.0
    adversary.state.p_pos = np.array([0.0, 0.3])  # 0.3: outside 0.16, inside 0.4
    good[0].state.p_pos = np.array([0.35, 0.0])  # the nearest good agent counts
    out = m.AdversaryMetrics().result(world)
    assert (out["adversary_success"], out["adversary_success_r04"]) == (0.0, 1.0)
    assert (out["good_success"], out["good_success_r04"]) == (0.0, 1.0)
    assert out["good_distance"] == pytest.approx(0.35)


def test_tag_counts_touches_over_steps():
    prey = entity(0.0, 0.0, adversary=False)
    predators = [entity(0.05, 0.0, adversary=True), entity(0.08, 0.0, adversary=True), entity(1, 1, adversary=True)]
    world = NS(agents=predators + [prey])
    tracker = m.TagMetrics()
    tracker.reset(world)
    tracker.step(world)  # two predators touch (sizes 0.05 + 0.05 > distance)
    tracker.step(world)
    assert tracker.result(world) == {"touches": 4.0}


def test_crypto_decoding():
    goal = NS(color=np.array([0, 0, 1, 0.0]))
    alice = entity(0, 0, speaker=True, adversary=False, goal_a=goal, c=np.array([0, 0, 1, 0.0]))
    bob = entity(0, 0, speaker=False, adversary=False, goal_a=goal, c=np.array([0.1, 0, 0.9, 0]))
    eve = entity(0, 0, speaker=False, adversary=True, goal_a=goal, c=np.array([0.9, 0, 0.1, 0]))
    out = m.CryptoMetrics().result(NS(agents=[eve, bob, alice]))
    assert out == {"bob_success": 1.0, "eve_success": 0.0}


def test_spread_distance_and_collisions():
    agents = [entity(0, 0), entity(0.05, 0), entity(1, 0)]
    landmarks = [entity(0, 0), entity(1, 0.5)]
    world = NS(agents=agents, landmarks=landmarks)
    tracker = m.SpreadMetrics()
    tracker.reset(world)
    tracker.step(world)
    out = tracker.result(world)
    assert out["mean_landmark_distance"] == pytest.approx((0.0 + 0.5) / 2)
    assert out["collisions"] == 1.0  # agents 0 and 1


def test_spread_metrics_equal_the_pairwise_definition_on_random_worlds():
    rng = np.random.default_rng(0)
    for n in (1, 3, 12):
        agents = [entity(*rng.uniform(-1, 1, 2), size=rng.uniform(0.05, 0.3)) for _ in range(n)]
        landmarks = [entity(*rng.uniform(-1, 1, 2)) for _ in range(n)]
        world = NS(agents=agents, landmarks=landmarks)
        tracker = m.SpreadMetrics()
        tracker.reset(world)
        tracker.step(world)
        out = tracker.result(world)
        nearest = [min(m._dist(a, lm) for a in agents) for lm in landmarks]
        pairs = sum(m._touching(a, b) for i, a in enumerate(agents) for b in agents[i + 1:])
        assert out["mean_landmark_distance"] == pytest.approx(np.mean(nearest), rel=1e-12)
        assert out["collisions"] == pairs


def test_push_frames_on_goal():
    goal = entity(0, 0, size=0.05)
    agent = entity(0.05, 0, adversary=False, goal_a=goal)
    adversary = entity(1, 1, adversary=True, goal_a=goal)
    world = NS(agents=[adversary, agent])
    tracker = m.PushMetrics()
    tracker.reset(world)
    for _ in range(3):
        tracker.step(world)
    assert tracker.result(world) == {"adversary_on_goal_frames": 0.0, "agent_on_goal_frames": 3.0}
