"""The paper's evaluation metrics for the MPE scenarios, read from the env's world.

Lowe et al. (2017) report task metrics rather than returns (section 5 and
tables 1-5). The paper does not say at which step or with which distance
thresholds they were computed (the author: at the last step, within a
"small-to-medium" radius chosen by eye, openai/maddpg issue 20), so this
module fixes both, reports the raw distances, and gives success at two radii:
a tight one (touching, or the scenario's own) and 0.4, the radius of the
independent replication with the original code (google/maddpg-replication):

| scenario | metric (per episode) | definition |
|---|---|---|
| simple_speaker_listener | `target_distance`, `target_reached`, `target_reached_r04` | at the last step, the listener's distance to its goal landmark; reached if < listener.size + landmark.size (touching, 0.115), or < 0.4 (`_r04`) |
| simple_adversary | `good_distance`, `adversary_distance`, `good_success`, `adversary_success`, `success_difference`, `good_success_r04`, `adversary_success_r04` | at the last step, the distance of the nearest good agent / of the adversary to the goal landmark; success if within 2 x goal size (0.16, the scenario's own "close" radius), or within 0.4 (`_r04`, google/maddpg-replication's radius); difference = good - adversary |
| simple_tag | `touches` | predator-prey contacts summed over the episode's steps (the scenario's benchmark_data) |
| simple_crypto | `bob_success`, `eve_success` | at the last step, argmax of Bob's / Eve's message equals the argmax of the goal colour |
| simple_spread | `mean_landmark_distance`, `collisions` | per step, each landmark's distance to its nearest agent, averaged over landmarks and steps; agent-agent contacts (pairs) summed over steps |
| simple_push | `adversary_on_goal_frames`, `agent_on_goal_frames` | steps in which the adversary / the good agent touches the good agent's goal landmark |

A tracker is reset with the env, updated after every step, and read at the
episode's end. Values are floats; RLlib averages them over episodes into
`env_runners/custom_metrics/<name>_mean` (so `*_success` means become rates).
"""

from typing import Dict, Optional

import numpy as np


def _dist(a, b) -> float:
    return float(np.sqrt(np.sum(np.square(a.state.p_pos - b.state.p_pos))))


# google/maddpg-replication's success radius (last frame).
REPLICATION_RADIUS = 0.4


def _touching(a, b) -> bool:
    return _dist(a, b) < a.size + b.size


class EpisodeMetrics:
    """Base tracker. The env wrapper calls `on_reset(env)`, `on_step(env)` after
    every step and `on_episode_end(env)`, with the unwrapped PettingZoo env;
    MPE trackers override `reset`, `step` and `result`, which get its world
    (`result` sees the world in its final state)."""

    def on_reset(self, env) -> None:
        self.reset(env.world)

    def on_step(self, env) -> None:
        self.step(env.world)

    def on_episode_end(self, env) -> Dict[str, float]:
        return self.result(env.world)

    def reset(self, world) -> None:
        pass

    def step(self, world) -> None:
        pass

    def result(self, world) -> Dict[str, float]:
        return {}


class SpeakerListenerMetrics(EpisodeMetrics):
    """Cooperative communication (table 1): target reach and distance."""

    def result(self, world):
        listener = world.agents[0].goal_a  # agent 0 (speaker) holds goal_a = the listener
        goal = world.agents[0].goal_b
        d = _dist(listener, goal)
        return {
            "target_distance": d,
            "target_reached": float(d < listener.size + goal.size),
            "target_reached_r04": float(d < REPLICATION_RADIUS),
        }


class AdversaryMetrics(EpisodeMetrics):
    """Physical deception (table 4): who reaches the target landmark."""

    def result(self, world):
        good = [a for a in world.agents if not a.adversary]
        bad = [a for a in world.agents if a.adversary]
        goal = good[0].goal_a
        radius = 2 * goal.size
        good_distance = min(_dist(a, goal) for a in good)
        adversary_distance = min(_dist(a, goal) for a in bad)
        good_success = float(good_distance < radius)
        adversary_success = float(adversary_distance < radius)
        return {
            "good_distance": good_distance,
            "adversary_distance": adversary_distance,
            "good_success": good_success,
            "adversary_success": adversary_success,
            "success_difference": good_success - adversary_success,
            "good_success_r04": float(good_distance < REPLICATION_RADIUS),
            "adversary_success_r04": float(adversary_distance < REPLICATION_RADIUS),
        }


class TagMetrics(EpisodeMetrics):
    """Predator-prey (table 3): touches per episode."""

    def reset(self, world):
        self.touches = 0

    def step(self, world):
        prey = [a for a in world.agents if not a.adversary]
        for predator in (a for a in world.agents if a.adversary):
            self.touches += sum(_touching(predator, p) for p in prey)

    def result(self, world):
        return {"touches": float(self.touches)}


class CryptoMetrics(EpisodeMetrics):
    """Covert communication (table 5): does Bob / Eve decode Alice's message?"""

    def result(self, world):
        out = {}
        for agent in world.agents:
            if agent.speaker:  # Alice
                continue
            goal = int(np.argmax(agent.goal_a.color))
            decoded = agent.state.c is not None and np.any(agent.state.c) and int(np.argmax(agent.state.c)) == goal
            out["eve_success" if agent.adversary else "bob_success"] = float(bool(decoded))
        return out


class SpreadMetrics(EpisodeMetrics):
    """Cooperative navigation (table 2): landmark coverage and collisions."""

    def reset(self, world):
        self.distance_sum, self.steps, self.collisions = 0.0, 0, 0

    def step(self, world):
        # All pairs at once (numpy): per pair, as _dist and _touching, this was a fifth of
        # the training time at N = 12 (78 pairs and 144 agent-landmark distances per step).
        agents = np.array([a.state.p_pos for a in world.agents])
        landmarks = np.array([lm.state.p_pos for lm in world.landmarks])
        to_landmarks = np.sqrt(np.square(landmarks[:, None] - agents[None]).sum(-1))  # [L, N]
        self.distance_sum += to_landmarks.min(1).mean()
        self.steps += 1
        i, j = np.triu_indices(len(agents), 1)
        apart = np.sqrt(np.square(agents[i] - agents[j]).sum(-1))
        sizes = np.array([a.size for a in world.agents])
        self.collisions += int(np.count_nonzero(apart < sizes[i] + sizes[j]))

    def result(self, world):
        return {
            "mean_landmark_distance": float(self.distance_sum / max(self.steps, 1)),
            "collisions": float(self.collisions),
        }


class PushMetrics(EpisodeMetrics):
    """Keep-away (table 3): frames the adversary / the good agent is on the goal."""

    def reset(self, world):
        self.adversary_frames, self.agent_frames = 0, 0

    def step(self, world):
        good = [a for a in world.agents if not a.adversary]
        goal = good[0].goal_a
        self.adversary_frames += any(_touching(a, goal) for a in world.agents if a.adversary)
        self.agent_frames += any(_touching(a, goal) for a in good)

    def result(self, world):
        return {
            "adversary_on_goal_frames": float(self.adversary_frames),
            "agent_on_goal_frames": float(self.agent_frames),
        }


SCENARIO_METRICS = {
    "simple_speaker_listener": SpeakerListenerMetrics,
    "simple_adversary": AdversaryMetrics,
    "simple_tag": TagMetrics,
    "simple_crypto": CryptoMetrics,
    "simple_spread": SpreadMetrics,
    "simple_push": PushMetrics,
}


def metrics_for(scenario: str) -> Optional[EpisodeMetrics]:
    cls = SCENARIO_METRICS.get(scenario)
    return cls() if cls else None
