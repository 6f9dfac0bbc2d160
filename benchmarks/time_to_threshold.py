"""Env steps and wall-clock until the tuned example's return threshold, ours beside AgileRL's MADDPG.

    python benchmarks/time_to_threshold.py --env simple_adversary [--peer agilerl]
        [--peer-python /work/.venv-agilerl/bin/python] [--peer-budget N] [--budget N]
    /work/venv-jax/bin/python benchmarks/time_to_threshold.py --env simple_spread \
        --tuned-example simple_spread_jaxmarl [--our-seed S]

Ours: trains MADDPG with the `config` of tuned_examples/<env>.yaml (in the
driver, as `rllib train file` does, seed 0) until its return threshold is met
or its env-step budget (the YAML's `num_env_steps_sampled_lifetime`) is used.

The threshold quantity, the same for both libraries: the YAML's stop metric,
computed as the mean over the last 100 finished training episodes (with
exploration) of the episode return of the YAML's agent (e.g.
`env_runners/policy_reward_mean/adversary_0` -> adversary_0's return) or of
the team (`env_runners/episode_return_mean` -> the sum over all agents). It is
checked after every finished episode; the first episode at which it reaches
the threshold gives "env steps" and "seconds" (from the start of training;
setup — Ray, building the algorithm — is reported apart).

RLlib's own metric (what the YAML's stop reads) is not exactly that: it is
computed once per training iteration (here at least 10,000 env steps) over
that iteration's episodes (about 400, when there are more than 100). It is
reported too ("YAML stop fires"). Per-episode returns of ours come from the
iteration's `hist_stats`; an episode's env step and time are placed by linear
interpolation inside its iteration (the lockstep sampler finishes 8 episodes
every 200 env steps, so steps are exact to 200).

AgileRL (`--peer agilerl`): benchmarks/peers/bench_agilerl.py in its own venv
(benchmarks/peers/setup_agilerl.sh), with its own default hyperparameters,
one torch thread, the same scenario (mpe2, continuous_actions=True,
max_cycles=25), the same threshold quantity and value, and the same env-step
budget, unless `--peer-budget` caps it lower (AgileRL runs at a few hundred
env steps per second on 2 cores).

Prints a table and, as its last line, one JSON object.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
BUDGET_KEY = "num_env_steps_sampled_lifetime"
SMOOTHING = 100


def flatten(d, prefix=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}/"))
        else:
            out[f"{prefix}{k}"] = v
    return out


def read_tuned_example(scenario: str) -> dict:
    """config, env, budget and threshold (metric key, agents, value) of tuned_examples/<scenario>.yaml."""
    path = os.path.join(REPO, "tuned_examples", f"{scenario}.yaml")
    with open(path, encoding="utf-8") as f:
        experiments = yaml.safe_load(f)
    (name, exp), = experiments.items()
    stop = flatten(exp["stop"])
    budget = int(stop.pop(BUDGET_KEY))
    (metric, value), = stop.items()
    if metric == "env_runners/episode_return_mean":
        agents, hist_key = None, "episode_reward"  # None: all agents (the team)
    elif metric.startswith("env_runners/policy_reward_mean/"):
        policy = metric.rsplit("/", 1)[1]
        agents, hist_key = [policy], f"policy_{policy}_reward"
    else:
        raise SystemExit(f"time_to_threshold.py: cannot map the stop metric {metric!r} of {path}")
    config = dict(exp["config"])
    config["env"] = exp["env"]
    env_config = config.setdefault("env_config", {})
    # What both libraries run; the project's defaults, written out.
    env_config.setdefault("continuous_actions", True)
    env_config.setdefault("max_cycles", 25)
    return {"path": os.path.relpath(path, REPO), "name": name, "config": config, "budget": budget,
            "metric": metric, "threshold": float(value), "agents": agents, "hist_key": hist_key}


def run_ours(spec: dict, budget: int) -> dict:
    import ray

    import rllib_maddpg  # noqa: F401  (registers MADDPG and the mpe/<scenario> envs)
    from rllib_maddpg import MADDPGConfig

    setup_start = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        config = MADDPGConfig().update_from_dict(spec["config"])
        algo = config.build_algo()
        agent_ids = [p for p in algo.config.policies]
        setup_s = time.perf_counter() - setup_start
        episodes = []  # (env step, seconds, quantity) per finished episode
        recent = []
        reached = yaml_stop = None
        steps_before, t_before = 0, 0.0
        load0 = os.getloadavg()[0]
        t0 = time.perf_counter()
        while True:
            result = algo.train()
            t_after = time.perf_counter() - t0
            steps_after = result[BUDGET_KEY]
            runners = result["env_runners"]
            n_new = runners["episodes_this_iter"]
            values = runners["hist_stats"][spec["hist_key"]][-n_new:] if n_new else []
            for j, v in enumerate(values):
                frac = (j + 1) / len(values)
                step = steps_before + frac * (steps_after - steps_before)
                sec = t_before + frac * (t_after - t_before)
                episodes.append((step, sec, float(v)))
                recent.append(float(v))
                if (reached is None and len(recent) >= SMOOTHING
                        and np.mean(recent[-SMOOTHING:]) >= spec["threshold"]):
                    reached = {"env_steps": int(round(step)), "seconds": sec,
                               "episodes": len(recent), "smoothed_return": float(np.mean(recent[-SMOOTHING:]))}
            rllib_value = flatten(result).get(spec["metric"])
            if yaml_stop is None and rllib_value is not None and rllib_value >= spec["threshold"]:
                yaml_stop = {"env_steps": int(steps_after), "seconds": t_after, "value": float(rllib_value)}
            print(f"ours:    env steps {steps_after:>9,} | {steps_after / t_after:6.0f} steps/s | smoothed "
                  f"return (last {min(len(recent), SMOOTHING)} episodes) "
                  f"{np.mean(recent[-SMOOTHING:]) if recent else float('nan'):8.2f} | RLlib's "
                  f"{rllib_value if rllib_value is not None else float('nan'):8.2f} | {t_after:7.1f} s",
                  file=sys.stderr, flush=True)
            steps_before, t_before = steps_after, t_after
            if (reached is not None and yaml_stop is not None) or steps_after >= budget:
                break
        algo.stop()
    finally:
        ray.shutdown()
    return {
        "setup_s": setup_s, "env_steps": int(steps_before), "train_wall_s": t_before,
        "env_steps_per_s": steps_before / t_before, "episodes": len(recent),
        "reached": reached is not None, "reached_at": reached, "yaml_stop_at": yaml_stop,
        "final_smoothed_return": float(np.mean(recent[-SMOOTHING:])) if recent else None,
        "agents": agent_ids, "loadavg1_start_end": [load0, os.getloadavg()[0]],
    }


def check_peer(python: str) -> None:
    setup = os.path.relpath(os.path.join(HERE, "peers", "setup_agilerl.sh"))
    how = f"create it with: bash {setup} {os.path.dirname(os.path.dirname(python))}"
    if not os.path.exists(python):
        sys.exit(f"time_to_threshold.py: error: AgileRL's venv is missing ({python} not found); {how}")
    check = subprocess.run([python, "-c", "import agilerl.algorithms, mpe2"], capture_output=True, text=True)
    if check.returncode != 0:
        last = (check.stderr.strip().splitlines() or ["?"])[-1]
        sys.exit(f"time_to_threshold.py: error: {python} cannot import agilerl and mpe2 ({last}); {how}")


def run_agilerl(args, spec: dict, budget: int) -> dict:
    cmd = [args.peer_python, os.path.join(HERE, "peers", "bench_agilerl.py"),
           "--env", args.env, "--seed", str(args.seed), "--threads", "1",
           "--threshold", str(spec["threshold"]), "--window", str(SMOOTHING),
           "--budget", str(budget), "--eval-episodes", "0", "--progress-every", "10000"]
    if spec["agents"]:
        cmd += ["--threshold-agents", *spec["agents"]]
    if args.peer_max_seconds:
        cmd += ["--max-seconds", str(args.peer_max_seconds)]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    print("running: " + " ".join(cmd), file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        sys.exit(f"time_to_threshold.py: error: the AgileRL run failed (exit {proc.returncode})")
    res = json.loads(lines[-1])
    res["env_steps_per_s"] = res["run_env_steps_per_s"]
    return res


def fmt(x, spec=",.0f"):
    return "-" if x is None else format(x, spec)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", required=True, choices=["simple_spread", "simple_adversary"])
    parser.add_argument("--tuned-example", default=None,
                        help="ours: tuned_examples/<this>.yaml (default: the --env's own, e.g. "
                             "simple_spread_jaxmarl for the batched route on the same scenario)")
    parser.add_argument("--our-seed", type=int, default=None, help="ours: this seed instead of the YAML's")
    parser.add_argument("--peer", choices=["agilerl"], default=None)
    parser.add_argument("--peer-python", default="/work/.venv-agilerl/bin/python")
    parser.add_argument("--budget", type=int, default=None, help="env-step budget of ours (default: the YAML's)")
    parser.add_argument("--peer-budget", type=int, default=None,
                        help="env-step budget of the peer (default: the same as ours)")
    parser.add_argument("--peer-max-seconds", type=float, default=None,
                        help="also stop the peer after this many seconds of training (reported)")
    parser.add_argument("--seed", type=int, default=0, help="AgileRL's seed (ours: the YAML's)")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    if args.peer:
        check_peer(args.peer_python)

    spec = read_tuned_example(args.tuned_example or args.env)
    if spec["config"]["env"] != f"mpe/{args.env}":
        raise SystemExit(f"{spec['path']} trains {spec['config']['env']}, not mpe/{args.env}")
    if args.our_seed is not None:
        spec["config"]["seed"] = args.our_seed
    budget = args.budget or spec["budget"]
    peer_budget = args.peer_budget or budget
    who = "+".join(spec["agents"]) if spec["agents"] else "team (sum over agents)"
    quantity = f"{who} return, mean of the last {SMOOTHING} training episodes >= {spec['threshold']:g}"
    print(f"{spec['path']}: {quantity} (YAML stop: {spec['metric']} >= {spec['threshold']:g}); "
          f"budget {budget:,} env steps", file=sys.stderr, flush=True)

    ours = run_ours(spec, budget)
    peer = run_agilerl(args, spec, peer_budget) if args.peer else None

    cols = {"ours": ours}
    if peer:
        cols["agilerl"] = peer
    table = [
        ("budget (env steps)", {"ours": budget, "agilerl": peer_budget}, ",.0f"),
        ("threshold reached", {k: ("yes" if v["reached"] else "no") for k, v in cols.items()}, "s"),
        ("env steps to threshold", {k: (v["reached_at"] or {}).get("env_steps") for k, v in cols.items()}, ",.0f"),
        ("seconds to threshold", {k: (v["reached_at"] or {}).get("seconds") for k, v in cols.items()}, ".1f"),
        ("episodes to threshold", {k: (v["reached_at"] or {}).get("episodes") for k, v in cols.items()}, ",.0f"),
        ("env steps run", {k: v["env_steps"] for k, v in cols.items()}, ",.0f"),
        ("training seconds run", {k: v["train_wall_s"] for k, v in cols.items()}, ".1f"),
        ("env steps/s (whole run)", {k: v["env_steps_per_s"] for k, v in cols.items()}, ",.0f"),
        ("setup seconds", {k: v["setup_s"] for k, v in cols.items()}, ".1f"),
        ("final smoothed return", {k: v["final_smoothed_return"] for k, v in cols.items()}, ".2f"),
        ("load avg 1 min start/end", {k: "/".join(f"{x:.1f}" for x in v["loadavg1_start_end"])
                                      for k, v in cols.items()}, "s"),
    ]
    print(f"\nscenario {args.env}; threshold: {quantity}")
    header = f"{'':28s} {'ours (rllib_maddpg)':>20s}" + (f" {peer['peer']:>20s}" if peer else "")
    print(header)
    for label, values, spec_ in table:
        line = f"{label:28s}"
        for k in cols:
            line += f" {fmt(values.get(k), spec_):>20s}"
        print(line)
    ys = ours["yaml_stop_at"]
    print(f"ours, YAML stop ({spec['metric']}, RLlib's per-iteration mean) fires: "
          + (f"at {ys['env_steps']:,} env steps, {ys['seconds']:.1f} s (value {ys['value']:.2f})" if ys else "never"))
    if peer and peer_budget < spec["budget"]:
        print(f"AgileRL capped at {peer_budget:,} env steps (the YAML's budget is {spec['budget']:,})")
    if peer and not peer["reached"] and peer["env_steps"] < peer_budget:
        print(f"AgileRL stopped by --peer-max-seconds {args.peer_max_seconds:g} after {peer['env_steps']:,} env steps")

    out = {
        "env": args.env, "yaml": spec["path"], "seed": spec["config"].get("seed"),
        "threshold_metric": spec["metric"],
        "threshold": spec["threshold"], "threshold_agents": spec["agents"] or "all",
        "smoothing_episodes": SMOOTHING, "budget": budget,
        "ours": {k: ours[k] for k in ("reached", "reached_at", "yaml_stop_at", "env_steps", "train_wall_s",
                                      "env_steps_per_s", "setup_s", "final_smoothed_return",
                                      "loadavg1_start_end")},
    }
    if peer:
        out["agilerl_budget"] = peer_budget
        out["agilerl"] = {k: peer[k] for k in ("peer", "reached", "reached_at", "env_steps", "train_wall_s",
                                               "env_steps_per_s", "setup_s", "final_smoothed_return",
                                               "train_return_per_agent_last100", "loadavg1_start_end")}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
