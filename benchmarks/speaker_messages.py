"""What the speaker of cooperative communication says and where the listener stops, from
the checkpoints of reproduce_paper.py.

    python benchmarks/speaker_messages.py --out docs/repro

For every saved simple_speaker_listener run (`--out/checkpoints/<setting>_<seed>/`)
it feeds the speaker's actor the three goal colours it can observe and prints:
  - its noise-free message per goal (softmax of the logits);
  - how many distinct messages it sends (argmax per goal; 3 = one per landmark);
  - how many of its first-layer ReLUs are active for at least one goal (a dead
    unit is zero for every goal, so no gradient reaches it again);
  - over 200 greedy episodes (both trained policies, no noise): the listener's
    mean distance to its goal after each step, its mean closest approach, its
    final speed, and quantiles of its final distance;
  - whether the listener's critic would move it on: at its last step, the
    derivative of Q_listener with respect to the listener's force along the
    direction of its goal (positive: the critic asks for a push towards the
    goal), as the fraction of episodes where it is positive, by final distance.
The figures go to `--out/speaker_messages.json` (one entry per run), beside the
runs they describe.
"""

import argparse
import glob
import json
import os

import numpy as np

# The speaker observes its goal landmark's colour plus 0.45 (mpe2 and the original).
GOAL_COLOURS = np.array([[0.65, 0.15, 0.15], [0.15, 0.65, 0.15], [0.15, 0.15, 0.65]]) + 0.45


def speaker_report(policy_dir: str) -> dict:
    import torch
    from ray.rllib.policy.policy import Policy

    policy = Policy.from_checkpoint(policy_dir)
    actor = policy.model.actor
    x = torch.tensor(GOAL_COLOURS, dtype=torch.float32)
    with torch.no_grad():
        messages = torch.softmax(actor(x), -1).numpy()
        first = actor[0](x)
    active = int((first > 0).any(0).sum())
    return {
        "messages": np.round(messages, 3).tolist(),
        "distinct_messages": len(set(messages.argmax(-1).tolist())),
        "active_first_layer_units": active,
        "first_layer_units": int(first.shape[1]),
    }


def listener_report(ckpt: str, env_config: dict, episodes: int = 200) -> dict:
    from ray.rllib.policy.policy import Policy

    from rllib_maddpg.envs import env_agent_ids, make_mpe_env
    from rllib_maddpg.evaluation import env_action

    policies = {pid: Policy.from_checkpoint(os.path.join(ckpt, "policies", pid))
                for pid in ("speaker_0", "listener_0")}
    env = make_mpe_env("simple_speaker_listener", env_config)
    world = env.par_env.unwrapped.world
    distances, speeds, pushes = [], [], []  # [episode][step], [episode], [episode]
    for episode in range(episodes):
        obs, _ = env.reset(seed=20_000 + episode)
        listener, goal = world.agents[0].goal_a, world.agents[0].goal_b
        distances.append([])
        done = False
        while not done:
            actions = {}
            for agent_id, agent_obs in obs.items():
                action, _, _ = policies[agent_id].compute_single_action(agent_obs, explore=False)
                actions[agent_id] = env_action(policies[agent_id], action)
            last = (obs, actions, goal.state.p_pos - listener.state.p_pos)
            obs, _, terminateds, truncateds, _ = env.step(actions)
            distances[-1].append(float(np.linalg.norm(listener.state.p_pos - goal.state.p_pos)))
            done = terminateds.get("__all__") or truncateds.get("__all__")
        speeds.append(float(np.linalg.norm(listener.state.p_vel)))
        pushes.append(critic_push(policies["listener_0"].model, env_agent_ids(env), *last))
    d = np.array(distances)
    pushes = np.array(pushes)
    push_by_distance = {}
    for lo, hi in ((0.0, 0.1), (0.1, 0.2), (0.2, 0.3), (0.3, np.inf)):
        near = (d[:, -1] >= lo) & (d[:, -1] < hi)
        if near.any():
            push_by_distance[f"{lo:g}-{hi:g}"] = {"episodes": int(near.sum()),
                                                  "push_positive": round(float((pushes[near] > 0).mean()), 2)}
    return {
        "distance_per_step": np.round(d.mean(0), 3).tolist(),
        "closest_approach": round(float(d.min(1).mean()), 3),
        "final_speed": round(float(np.mean(speeds)), 3),
        "final_distance_quantiles_10_50_90": np.round(np.quantile(d[:, -1], [0.1, 0.5, 0.9]), 3).tolist(),
        "critic_push_towards_goal_by_final_distance": push_by_distance,
    }


def critic_push(model, agent_ids, obs, actions, to_goal) -> float:
    """dQ_listener / d(force towards the goal) at (obs, actions): mpe2's force is
    (a[2] - a[1], a[4] - a[3]) for the listener's 5-vector a."""
    import torch

    acts = {k: torch.tensor(np.asarray(a, np.float32)[None], requires_grad=k == "listener_0")
            for k, a in actions.items()}
    q = model.q(model.critic, [torch.tensor(obs[k][None]) for k in agent_ids], [acts[k] for k in agent_ids])
    q.sum().backward()
    g = acts["listener_0"].grad[0].numpy()
    return float(np.array([g[2] - g[1], g[4] - g[3]]) @ (to_goal / np.linalg.norm(to_goal)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="docs/repro")
    args = parser.parse_args()
    out = os.path.abspath(args.out)

    import rllib_maddpg  # noqa: F401  (policy classes unpickle from it)

    path = os.path.join(out, "speaker_messages.json")
    reports = {}
    if os.path.exists(path):
        with open(path) as f:
            reports = json.load(f)
    for ckpt in sorted(glob.glob(os.path.join(out, "checkpoints", "*", "policies", "speaker_0"))):
        run = os.path.basename(os.path.dirname(os.path.dirname(ckpt)))
        if not os.path.exists(os.path.join(out, "runs", f"{run}.json")):
            continue  # still training
        with open(os.path.join(out, "runs", f"{run}.json")) as f:
            env_config = json.load(f)["env_config"]
        reports[run] = {**speaker_report(ckpt),
                        "listener": listener_report(os.path.dirname(os.path.dirname(ckpt)), env_config)}
    with open(path, "w") as f:
        json.dump(reports, f, indent=1, sort_keys=True)
    for run, r in sorted(reports.items()):
        shown = " ".join("[" + ",".join(f"{p:.2f}" for p in m) + "]" for m in r["messages"])
        print(f"{run:24s} distinct {r['distinct_messages']}  active units "
              f"{r['active_first_layer_units']:2d}/{r['first_layer_units']}  {shown}")
        if "listener" in r:
            listener = r["listener"]
            steps = listener["distance_per_step"]
            print(f"{'':24s} listener: distance after steps 5/10/15/20/25 "
                  f"{' / '.join(f'{steps[k - 1]:.2f}' for k in (5, 10, 15, 20, 25))}, closest "
                  f"{listener['closest_approach']:.2f}, final speed {listener['final_speed']:.3f}, "
                  f"final distance q10/50/90 {listener['final_distance_quantiles_10_50_90']}")
            print(f"{'':24s} critic asks for a push towards the goal at the last step, by final distance: "
                  + ", ".join(f"{k}: {v['push_positive']:.0%} of {v['episodes']}"
                              for k, v in listener["critic_push_towards_goal_by_final_distance"].items()))


if __name__ == "__main__":
    main()
