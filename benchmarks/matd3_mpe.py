"""MATD3's keys on MPE tuned examples: env steps to the YAML's threshold, paper's MADDPG vs MATD3.

    python benchmarks/matd3_mpe.py --env simple_spread simple_adversary --seeds 0 1 2 \
        [--out docs/matd3_mpe] [--ray-num-cpus 1]

For each env and variant, one `rllib train file tuned_examples/<env>.yaml`
run as a user would start it, with the seed as a Tune grid search (trials one
after another with --ray-num-cpus 1) and the variant's keys merged with
`--config`; no checkpoints. Per trial: whether the YAML's stop metric reached
its threshold, the env steps and the training seconds at the stop, and the
metric there. Variants:

- paper: the tuned example as it is (MADDPG).
- matd3: plus twin_critics (the minimum of two target critics) and
  actor_update_delay 2 (Ackermann et al. 2019). MPE's actions are
  Gumbel-Softmax samples, so target-policy smoothing (target_action_noise,
  Box actions only) does not apply: a Gumbel-Softmax target action is a
  sample already.

Writes <out>/<env>__<variant>.json per (env, variant) when its run ends; a
rerun skips those that exist (resumable). Prints one table and, last, one
JSON line with every run.
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VARIANTS = {
    "paper": {},
    "matd3": {"twin_critics": True, "actor_update_delay": 2},
}


def stop_of(env):
    sys.path.insert(0, REPO)
    from rllib_maddpg import cli

    (name, raw), = cli.load_experiment_file(os.path.join(REPO, "tuned_examples", f"{env}.yaml")).items()
    stop = cli.flatten_stop(raw["stop"], "")
    (metric, threshold), = [(k, v) for k, v in stop.items() if k.startswith("env_runners/")]
    return name, metric, threshold, stop["num_env_steps_sampled_lifetime"]


def lookup(result, metric):
    value = result
    for part in metric.split("/"):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def run(env, variant, seeds, ray_num_cpus):
    name, metric, threshold, budget = stop_of(env)
    overrides = {**VARIANTS[variant], "seed": {"grid_search": list(seeds)}}
    with tempfile.TemporaryDirectory() as storage:
        command = [sys.executable, "-m", "rllib_maddpg.cli", "train", "file",
                   os.path.join("tuned_examples", f"{env}.yaml"), "--config", json.dumps(overrides),
                   "--storage-path", storage, "--ray-num-cpus", str(ray_num_cpus),
                   "--checkpoint-freq", "0", "--no-checkpoint-at-end"]
        start = time.time()
        proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-3000:])
        trials = []
        for path in sorted(glob.glob(os.path.join(storage, name, "*", "result.json"))):
            with open(path) as f:
                results = [json.loads(line) for line in f if line.strip()]
            last = results[-1]
            value = lookup(last, metric)
            trials.append({
                "seed": last["config"]["seed"],
                "reached": value is not None and value >= threshold,
                "env_steps": last["num_env_steps_sampled_lifetime"],
                "train_seconds": round(last["time_total_s"], 1),
                "metric_at_stop": value,
            })
    return {"env": env, "variant": variant, "overrides": VARIANTS[variant], "metric": metric,
            "threshold": threshold, "budget": budget, "wall_s": round(time.time() - start, 1),
            "command": " ".join(command[1:]).replace(storage, "<tmp>"),
            "trials": sorted(trials, key=lambda t: t["seed"])}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", nargs="+", default=["simple_spread", "simple_adversary"])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", default=os.path.join(REPO, "docs", "matd3_mpe"))
    parser.add_argument("--ray-num-cpus", type=int, default=1)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    records = []
    for env in args.env:
        for variant in args.variants:
            path = os.path.join(args.out, f"{env}__{variant}.json")
            if not os.path.exists(path):
                record = run(env, variant, args.seeds, args.ray_num_cpus)
                with open(path, "w") as f:
                    json.dump(record, f, indent=1)
                print("wrote", path, flush=True)
            with open(path) as f:
                records.append(json.load(f))
    print("| env | variant | threshold / budget | seed: env steps at stop (reached?) | training s |")
    print("|---|---|---|---|---|")
    for r in records:
        steps = ", ".join(f"{t['seed']}: {t['env_steps'] // 1000}k{'' if t['reached'] else ' (not reached)'}"
                          for t in r["trials"])
        secs = ", ".join(f"{t['train_seconds']:.0f}" for t in r["trials"])
        print(f"| {r['env']} | {r['variant']} | {r['metric'].split('/')[-1]} >= {r['threshold']:g} / "
              f"{r['budget'] // 1000}k | {steps} | {secs} |")
    print(json.dumps(records))


if __name__ == "__main__":
    main()
