"""Envs as users bring them: env steps/s and returns at the start and end of a fixed budget.

    python benchmarks/user_envs.py --out docs/user_envs --budget 50000
    python benchmarks/user_envs.py --out docs/user_envs --table-only

For each env of tests/user_envs.py (pursuit_v5, multiwalker_v9,
knights_archers_zombies_v11, RLlib's MultiAgentCartPole with 2 agents, a
PettingZoo env with Dict observations, a native env with image observations)
MADDPG trains at its default settings (the paper's: lr 1e-2, one update per
100 env steps on a minibatch of 1024, learning from 25,600 env steps on) with
8 sub-envs on the driver, one torch thread, seed 0, for `--budget` env steps.
Recorded: the training throughput (env steps/s, updates included), the mean
training episode return (summed over agents) of the first and the last
iteration, and the greedy return (explore=False, decentralized, episodes
seeded 10,000 + k) of the untrained and the trained actors. One JSON per env
in `--out`, written when its run ends; a rerun skips envs already there.
Envs whose package is missing are recorded as skipped, with the reason.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

ENVS = {  # name -> env_config (the env's defaults unless said)
    "user/pursuit_v5": {},
    "user/multiwalker_v9": {},
    "user/knights_archers_zombies_v11": {},
    "user/multi_agent_cartpole": {},
    "user/dict_obs": {},
    "user/image_obs": {},
}


def greedy_return(algo, env_name, env_config, episodes):
    """Mean episode return (summed over agents), greedy, on fixed seeds."""
    from ray.tune.registry import ENV_CREATOR, _global_registry

    from rllib_maddpg.evaluation import run_algorithm_episodes

    env = _global_registry.get(ENV_CREATOR, env_name)(env_config)
    try:
        result = run_algorithm_episodes(algo, env, episodes, seed=10_000)
    finally:
        env.close()
    return float(result.returns.sum(axis=1).mean()), float(np.mean(result.lengths))


def run(env_name, env_config, budget, eval_episodes):
    import user_envs
    from rllib_maddpg import MADDPGConfig

    reason = user_envs.missing(env_name)
    if reason:
        return {"env": env_name, "skipped": reason}
    config = (
        MADDPGConfig()
        .environment(env_name, env_config=env_config)
        .env_runners(num_env_runners=0, num_envs_per_env_runner=8, rollout_fragment_length=25)
        .reporting(min_sample_timesteps_per_iteration=5000)
        .debugging(seed=0)
    )
    algo = config.build_algo()
    try:
        agents = [str(a.agent_id) for a in algo.agents]
        before, length = greedy_return(algo, env_name, env_config, eval_episodes)
        curve, start, seconds = [], time.time(), 0.0
        while not curve or curve[-1]["env_steps"] < budget:
            t0 = time.time()
            result = algo.train()
            seconds += time.time() - t0
            curve.append({"env_steps": result["num_env_steps_sampled_lifetime"],
                          "episode_return_mean": result["env_runners"].get("episode_return_mean"),
                          "seconds": round(seconds, 1)})
            print(env_name, curve[-1], flush=True)
        after, _ = greedy_return(algo, env_name, env_config, eval_episodes)
    finally:
        algo.stop()
    return {
        "env": env_name, "env_config": env_config, "agents": agents,
        "masked_critics": bool(algo.config._maddpg_masked), "budget": budget, "seed": 0,
        "env_steps_per_s": round(curve[-1]["env_steps"] / seconds, 1),
        "train_return_first_iteration": curve[0]["episode_return_mean"],
        "train_return_last_iteration": curve[-1]["episode_return_mean"],
        "greedy_return_untrained": before, "greedy_return_trained": after,
        "greedy_episodes": eval_episodes, "greedy_episode_length_untrained": length,
        "wall_s": round(time.time() - start, 1), "curve": curve,
    }


def table(out):
    rows = ["| env | agents | masked | env steps/s | train return first -> last iteration | greedy return untrained -> trained |",
            "|---|---|---|---|---|---|"]
    for name in ENVS:
        path = os.path.join(out, name.split("/")[-1] + ".json")
        if not os.path.exists(path):
            continue
        with open(path) as f:
            r = json.load(f)
        if "skipped" in r:
            rows.append(f"| {name} | skipped: {r['skipped']} | | | | |")
            continue
        rows.append(f"| {name} | {len(r['agents'])} | {r['masked_critics']} | {r['env_steps_per_s']:.0f} | "
                    f"{r['train_return_first_iteration']:.1f} -> {r['train_return_last_iteration']:.1f} | "
                    f"{r['greedy_return_untrained']:.1f} -> {r['greedy_return_trained']:.1f} |")
    print("\n".join(rows))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="docs/user_envs")
    parser.add_argument("--budget", type=int, default=50_000)
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--envs", nargs="*", default=list(ENVS))
    parser.add_argument("--table-only", action="store_true")
    args = parser.parse_args()
    if args.budget < 1 or args.eval_episodes < 1:
        parser.error("--budget and --eval-episodes must be >= 1")
    unknown = set(args.envs) - set(ENVS)
    if unknown:
        parser.error(f"unknown envs {sorted(unknown)}; choose from {list(ENVS)}")
    os.makedirs(args.out, exist_ok=True)
    if not args.table_only:
        import ray
        import torch

        torch.set_num_threads(1)
        ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
        for name in args.envs:
            path = os.path.join(args.out, name.split("/")[-1] + ".json")
            if os.path.exists(path):
                print(f"{name}: {path} exists, skipped")
                continue
            record = run(name, ENVS[name], args.budget, args.eval_episodes)
            record["command"] = " ".join(["python", "benchmarks/user_envs.py"] + sys.argv[1:])
            with open(path, "w") as f:
                json.dump(record, f)
            print(f"wrote {path}", flush=True)
        ray.shutdown()
    table(args.out)


if __name__ == "__main__":
    main()
