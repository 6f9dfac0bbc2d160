"""What a resume without the replay buffer costs, and what storing the buffer costs.

    python benchmarks/resume_buffer.py --out docs/fault_tolerance/resume_buffer [--seeds 0 1 2]
        [--resume-at 100000] [--budget 200000]

For each seed, MADDPG trains with the config of tuned_examples/simple_spread.yaml
(one process, one torch thread) to `--resume-at` env steps and saves a
checkpoint with the replay buffer (store_buffer_in_checkpoints=True), then a
second algorithm built with store_buffer_in_checkpoints=False restores it
(weights, targets, optimizers and counters, not the buffer) and saves one
without. From there three arms continue to `--budget` env steps:

- uninterrupted: the first algorithm goes on (no resume at all);
- resumed with the buffer: a new algorithm restores the checkpoint with it;
- resumed without the buffer: the second algorithm goes on, its buffer empty,
  so it collects `num_steps_sampled_before_learning_starts` env steps again
  before its first update (the learning-starts check reads the buffer's size).

Recorded per arm: the mean training episode return (summed over agents, with
exploration) of each iteration, and the greedy return (explore=False, the
actors alone, episodes seeded 10,000 + k) every `--eval-every` env steps;
and per checkpoint its size on disk and the seconds to save and restore it.
One JSON per seed in --out, written when the seed ends; a rerun skips seeds
already there. Prints a table over the seeds from whatever JSON is there.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from time_to_threshold import read_tuned_example  # noqa: E402

ARMS = ("uninterrupted", "resumed_with_buffer", "resumed_without_buffer")


def greedy_return(algo, episodes: int) -> float:
    from rllib_maddpg.evaluation import run_algorithm_episodes
    from rllib_maddpg.envs import make_mpe_env

    env = make_mpe_env(algo.config.env.split("/", 1)[1], algo.config.env_config)
    try:
        return float(run_algorithm_episodes(algo, env, episodes, seed=10_000).returns.sum(axis=1).mean())
    finally:
        env.close()


def dir_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files)


def train_to(algo, steps: int, eval_every: int, eval_episodes: int, curve: list, greedy: list) -> None:
    """Trains until `steps` env steps, appending each iteration's return and the greedy return
    each time the env-step count passes a multiple of `eval_every`."""
    done = curve[-1]["env_steps"] if curve else 0
    while done < steps:
        result = algo.train()
        done = result["num_env_steps_sampled_lifetime"]
        curve.append({"env_steps": done, "episode_return_mean": result["env_runners"].get("episode_return_mean"),
                      "env_steps_trained": result.get("num_env_steps_trained_lifetime")})
        if not greedy or done // eval_every > greedy[-1]["env_steps"] // eval_every or done >= steps:
            greedy.append({"env_steps": done, "greedy_return": greedy_return(algo, eval_episodes)})
            print(f"  {done:>8} env steps | train {curve[-1]['episode_return_mean']:8.2f} | "
                  f"greedy {greedy[-1]['greedy_return']:8.2f}", flush=True)


def run_seed(seed: int, resume_at: int, budget: int, eval_every: int, eval_episodes: int) -> dict:
    from rllib_maddpg import MADDPGConfig

    spec = read_tuned_example("simple_spread")
    base = {**spec["config"], "seed": seed}

    def build(store: bool):
        return MADDPGConfig().update_from_dict({**base, "store_buffer_in_checkpoints": store}).build_algo()

    tmp = tempfile.mkdtemp(prefix="resume_buffer_")
    out = {"seed": seed, "config": spec["path"], "resume_at": resume_at, "budget": budget,
           "eval_episodes": eval_episodes, "checkpoints": {}, "arms": {}}
    try:
        first = build(store=True)
        prefix, prefix_greedy = [], []
        print(f"seed {seed}: training to {resume_at:,} env steps", flush=True)
        train_to(first, resume_at, eval_every, eval_episodes, prefix, prefix_greedy)
        if prefix[-1]["env_steps"] >= budget:
            raise SystemExit(f"resume_buffer.py: the checkpoint falls at {prefix[-1]['env_steps']:,} env steps "
                             f"(iterations of min_sample_timesteps_per_iteration from {spec['path']}), not before "
                             f"--budget {budget:,}: raise --budget")
        out["prefix"] = {"curve": prefix, "greedy": prefix_greedy}

        with_buffer, without_buffer = os.path.join(tmp, "with"), os.path.join(tmp, "without")
        t = time.perf_counter()
        first.save(with_buffer)
        out["checkpoints"]["with_buffer"] = {"bytes": dir_bytes(with_buffer), "save_s": time.perf_counter() - t,
                                             "buffer_rows": len(first.local_replay_buffer)}
        second = build(store=False)
        t = time.perf_counter()
        second.restore(with_buffer)  # weights and counters; the buffer stays empty
        restore_without_s = time.perf_counter() - t
        assert len(second.local_replay_buffer) == 0
        t = time.perf_counter()
        second.save(without_buffer)
        out["checkpoints"]["without_buffer"] = {"bytes": dir_bytes(without_buffer),
                                                "save_s": time.perf_counter() - t,
                                                "restore_s": restore_without_s}
        third = build(store=True)
        t = time.perf_counter()
        third.restore(with_buffer)
        out["checkpoints"]["with_buffer"]["restore_s"] = time.perf_counter() - t
        assert len(third.local_replay_buffer) == len(first.local_replay_buffer)

        for arm, algo in zip(ARMS, (first, third, second)):
            print(f"seed {seed}: {arm}", flush=True)
            curve, greedy = [dict(prefix[-1])], [dict(prefix_greedy[-1])]
            train_to(algo, budget, eval_every, eval_episodes, curve, greedy)
            out["arms"][arm] = {"curve": curve[1:], "greedy": greedy}
            algo.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def table(out_dir: str) -> None:
    runs = []
    for name in sorted(os.listdir(out_dir)) if os.path.isdir(out_dir) else []:
        if name.startswith("seed_") and name.endswith(".json"):
            with open(os.path.join(out_dir, name)) as f:
                runs.append(json.load(f))
    if not runs:
        print("no results yet")
        return
    seeds = [r["seed"] for r in runs]
    print(f"seeds {seeds}; resume at {runs[0]['resume_at']:,} env steps, budget {runs[0]['budget']:,}")
    print("| arm | greedy return at the resume | +25k env steps | +50k | at the budget | training return, last iteration |")
    print("|---|---|---|---|---|---|")
    for arm in ARMS:
        def at(run, offset):
            target = run["resume_at"] + offset
            points = run["arms"][arm]["greedy"]
            return min(points, key=lambda p: abs(p["env_steps"] - target))["greedy_return"]

        cells = []
        for offset in (0, 25_000, 50_000, None):
            values = [at(r, offset) if offset is not None else r["arms"][arm]["greedy"][-1]["greedy_return"]
                      for r in runs]
            cells.append(f"{np.mean(values):.1f} ({', '.join(f'{v:.1f}' for v in values)})")
        last = [r["arms"][arm]["curve"][-1]["episode_return_mean"] for r in runs]
        cells.append(f"{np.mean(last):.1f} ({', '.join(f'{v:.1f}' for v in last)})")
        print(f"| {arm} | " + " | ".join(cells) + " |")
    for kind in ("with_buffer", "without_buffer"):
        c = [r["checkpoints"][kind] for r in runs]
        print(f"checkpoint {kind}: {np.mean([x['bytes'] for x in c]) / 1e6:.1f} MB, save "
              f"{np.mean([x['save_s'] for x in c]):.2f} s, restore {np.mean([x['restore_s'] for x in c]):.2f} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="docs/fault_tolerance/resume_buffer")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--resume-at", type=int, default=100_000)
    parser.add_argument("--budget", type=int, default=200_000)
    parser.add_argument("--eval-every", type=int, default=10_000)
    parser.add_argument("--eval-episodes", type=int, default=50)
    parser.add_argument("--table-only", action="store_true")
    args = parser.parse_args()
    if not 0 < args.resume_at < args.budget or args.eval_every < 1 or args.eval_episodes < 1:
        parser.error("need 0 < --resume-at < --budget, --eval-every >= 1 and --eval-episodes >= 1")
    os.makedirs(args.out, exist_ok=True)
    if not args.table_only:
        import ray
        import torch

        import rllib_maddpg  # noqa: F401  (registers MADDPG and the mpe/<scenario> envs)

        torch.set_num_threads(1)
        ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
        try:
            for seed in args.seeds:
                path = os.path.join(args.out, f"seed_{seed}.json")
                if os.path.exists(path):
                    print(f"seed {seed}: {path} exists, skipped")
                    continue
                result = run_seed(seed, args.resume_at, args.budget, args.eval_every, args.eval_episodes)
                with open(path, "w") as f:
                    json.dump(result, f, indent=1)
        finally:
            ray.shutdown()
    table(args.out)


if __name__ == "__main__":
    main()
