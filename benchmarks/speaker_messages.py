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
    final speed, and quantiles of its final distance.
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

    from rllib_maddpg.envs import make_mpe_env
    from rllib_maddpg.evaluation import env_action

    policies = {pid: Policy.from_checkpoint(os.path.join(ckpt, "policies", pid))
                for pid in ("speaker_0", "listener_0")}
    env = make_mpe_env("simple_speaker_listener", env_config)
    world = env.par_env.unwrapped.world
    distances, speeds = [], []  # [episode][step], [episode]
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
            obs, _, terminateds, truncateds, _ = env.step(actions)
            distances[-1].append(float(np.linalg.norm(listener.state.p_pos - goal.state.p_pos)))
            done = terminateds.get("__all__") or truncateds.get("__all__")
        speeds.append(float(np.linalg.norm(listener.state.p_vel)))
    d = np.array(distances)
    return {
        "distance_per_step": np.round(d.mean(0), 3).tolist(),
        "closest_approach": round(float(d.min(1).mean()), 3),
        "final_speed": round(float(np.mean(speeds)), 3),
        "final_distance_quantiles_10_50_90": np.round(np.quantile(d[:, -1], [0.1, 0.5, 0.9]), 3).tolist(),
    }


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


if __name__ == "__main__":
    main()
