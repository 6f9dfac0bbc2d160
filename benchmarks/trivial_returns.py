"""Returns of trivial policies on the nine MPE scenarios, to set tuned-example thresholds against.

    python benchmarks/trivial_returns.py --episodes 200

A threshold means "solved" only if no trivial policy reaches it. Printed per
scenario, each agent's mean episode return and the team return (sum over
agents, RLlib's `episode_return_mean`) for:
  - random: uniformly random actions of the env's action space;
  - no-op: every agent stays put (movement probability on "no-op"; silent);
  - for simple_speaker_listener also two scripted listeners that read the
    world's state (a speaker that says nothing): "middle" drives to the
    centroid of the landmarks (the best a listener can do without the
    speaker's message) and "oracle" drives to its goal (perfect communication).
"""

import argparse

import numpy as np

from rllib_maddpg.envs import MPE_SCENARIOS, make_mpe_env


def _drive_to(agent, target) -> np.ndarray:
    """A [no-op, left, right, down, up] vector that pushes `agent` toward
    `target` (a PD controller; mpe2's force is 5 * (a2 - a1, a4 - a3))."""
    u = 2.0 * (target - agent.state.p_pos) - 0.6 * agent.state.p_vel
    u = np.clip(u, -1.0, 1.0)
    return np.array([0.0, max(-u[0], 0), max(u[0], 0), max(-u[1], 0), max(u[1], 0)], np.float32)


def policy_actions(kind: str, env, rng) -> dict:
    world = env.par_env.unwrapped.world
    actions = {}
    for agent_id in env.possible_agents:
        space = env.action_spaces[agent_id]
        if kind == "random":
            actions[agent_id] = space.sample()
            continue
        segments = env.action_simplex_segments.get(agent_id)
        action = np.zeros(space.shape, np.float32)
        start = 0
        for size in segments or []:
            action[start] = 1.0  # "no-op" move, or message 0
            start += size
        actions[agent_id] = action
    if kind in ("middle", "oracle"):
        speaker, listener = world.agents
        target = (np.mean([lm.state.p_pos for lm in world.landmarks], 0) if kind == "middle"
                  else speaker.goal_b.state.p_pos)
        actions["listener_0"] = _drive_to(listener, target)
    return actions


def returns_of(scenario: str, kind: str, episodes: int, seed: int = 0):
    env = make_mpe_env(scenario)
    rng = np.random.default_rng(seed)
    for k, agent_id in enumerate(env.possible_agents):
        env.action_spaces[agent_id].seed(seed + k)
    totals = np.zeros((episodes, len(env.possible_agents)))
    for episode in range(episodes):
        env.reset(seed=seed + episode)
        while True:
            _, rewards, terms, truncs, _ = env.step(policy_actions(kind, env, rng))
            totals[episode] += [rewards[a] for a in env.possible_agents]
            if terms["__all__"] or truncs["__all__"]:
                break
    return env.possible_agents, totals.mean(0), totals.sum(1).mean()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--scenarios", nargs="*", default=list(MPE_SCENARIOS), choices=MPE_SCENARIOS)
    args = parser.parse_args()
    for scenario in args.scenarios:
        kinds = ["random", "no-op"] + (["middle", "oracle"] if scenario == "simple_speaker_listener" else [])
        for kind in kinds:
            agents, per_agent, team = returns_of(scenario, kind, args.episodes)
            shown = ", ".join(f"{a} {r:.1f}" for a, r in zip(agents, per_agent))
            print(f"{scenario:24s} {kind:7s} team {team:7.1f} | {shown}", flush=True)


if __name__ == "__main__":
    main()
