"""Reproduce the MADDPG paper's tables (scaled to this machine) and print them beside the paper's.

    python benchmarks/reproduce_paper.py --seeds 0 1 2 --steps 300000 --jobs 2 --out docs/results
    python benchmarks/reproduce_paper.py --only t1 t4 --seeds 0 --steps 100000   # a quick look

Each experiment trains MADDPG (or DDPG, a local critic: `use_local_critic`)
per team with the paper's hyperparameters, then evaluates the final policies
for `--eval-episodes` episodes without exploration noise, decentralized
(rllib_maddpg.evaluation), and records the paper's task metrics
(rllib_maddpg/envs/mpe_metrics.py). Runs are saved as JSON under
`--out/runs/` and reused when the script is run again (delete them to rerun);
`--plot` draws the learning curves as PNG (needs matplotlib).

The paper trained for 25,000+ episodes (625k+ env steps) and over several
seeds; `--steps` scales that down. The table says what was run.
"""

import argparse
import json
import multiprocessing as mp
import os
import time
from typing import Dict, List

import numpy as np

# name -> (scenario, env_config, MADDPG config overrides, note)
EXPERIMENTS = {
    # T1 cooperative communication (speaker-listener)
    "t1_maddpg": ("simple_speaker_listener", {}, {}, "MADDPG"),
    "t1_ddpg": ("simple_speaker_listener", {}, {"use_local_critic": True}, "DDPG"),
    # policy inference on cooperative communication (fig. 7)
    "inference_maddpg": ("simple_speaker_listener", {}, {"infer_other_policies": True}, "MADDPG, inferred policies"),
    # The same three with learning rates 1e-3 instead of the paper's 1e-2: at 1e-2
    # the speaker never learns to communicate here (docs/RESULTS.md).
    "t1_maddpg_lr3": ("simple_speaker_listener", {}, {"actor_lr": 1e-3, "critic_lr": 1e-3}, "MADDPG, lr 1e-3"),
    "t1_ddpg_lr3": ("simple_speaker_listener", {},
                    {"actor_lr": 1e-3, "critic_lr": 1e-3, "use_local_critic": True}, "DDPG, lr 1e-3"),
    "inference_lr3": ("simple_speaker_listener", {},
                      {"actor_lr": 1e-3, "critic_lr": 1e-3, "infer_other_policies": True},
                      "MADDPG, inferred policies, lr 1e-3"),
    # T4 physical deception, N = 2 (good agent team / adversary)
    "t4_mm": ("simple_adversary", {"N": 2}, {}, "M/M"),
    "t4_md": ("simple_adversary", {"N": 2}, {"use_local_critic": ["adversary_0"]}, "M/D"),
    "t4_dm": ("simple_adversary", {"N": 2}, {"use_local_critic": ["agent_0", "agent_1"]}, "D/M"),
    "t4_dd": ("simple_adversary", {"N": 2}, {"use_local_critic": True}, "D/D"),
    # T3 predator-prey (predators / prey)
    "t3_mm": ("simple_tag", {}, {}, "M/M"),
    "t3_dd": ("simple_tag", {}, {"use_local_critic": True}, "D/D"),
    # T5 covert communication
    "t5_mm": ("simple_crypto", {}, {}, "M/M"),
    # T6 policy ensembles on keep-away: K = 3 against single policies
    "t6_ensemble": ("simple_push", {}, {"num_subpolicies": 3}, "ensemble (K=3)"),
    "t6_single": ("simple_push", {}, {}, "single policy"),
}
GROUPS = {
    "t1": ["t1_maddpg", "t1_ddpg"],
    "inference": ["t1_maddpg", "inference_maddpg"],
    "t1_lr3": ["t1_maddpg_lr3", "t1_ddpg_lr3", "inference_lr3"],
    "t4": ["t4_mm", "t4_md", "t4_dm", "t4_dd"],
    "t3": ["t3_mm", "t3_dd"],
    "t5": ["t5_mm"],
    "t6": ["t6_ensemble", "t6_single"],
}
# The paper's numbers (Lowe et al. 2017), as quoted in this project's issue.
PAPER = {
    "t1_maddpg": "84.0% target reach, distance 0.133",
    "t1_ddpg": "32.0% target reach, distance 0.456",
    "inference_maddpg": "fig. 7: same success as true policies",
    "t1_maddpg_lr3": "84.0% target reach, distance 0.133",
    "t1_ddpg_lr3": "32.0% target reach, distance 0.456",
    "inference_lr3": "fig. 7: same success as true policies",
    "t4_mm": "94.4% agent / 39.2% adversary success",
    "t4_dd": "74.7% agent / 38.6% adversary success",
    "t3_mm": "11.0 touches",
    "t3_dd": "9.4 touches",
    "t5_mm": "Bob 96.5% / Eve 52.1%",
    "t6_ensemble": "table 6: ensembles beat single policies",
}


def train_and_evaluate(name: str, seed: int, steps: int, eval_episodes: int) -> Dict:
    """One run: train to `steps` env steps, then evaluate without noise."""
    import ray

    import rllib_maddpg  # noqa: F401
    from rllib_maddpg import MADDPGConfig
    from rllib_maddpg.envs import make_mpe_env
    from rllib_maddpg.evaluation import run_episodes

    scenario, env_config, overrides, _ = EXPERIMENTS[name]
    if not ray.is_initialized():
        ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    config = (
        MADDPGConfig()
        .environment(f"mpe/{scenario}", env_config=env_config)
        .env_runners(num_env_runners=0, num_envs_per_env_runner=8, rollout_fragment_length=25)
        .reporting(min_sample_timesteps_per_iteration=10_000)
        .debugging(seed=seed)
    )
    config.update_from_dict(overrides)
    algo = config.build_algo()
    curve, start = [], time.time()
    try:
        while not curve or curve[-1]["env_steps"] < steps:
            r = algo.train()
            env_runners = r["env_runners"]
            curve.append({
                "env_steps": r["num_env_steps_sampled_lifetime"],
                "seconds": time.time() - start,
                "returns": {k: float(v) for k, v in env_runners.get("policy_reward_mean", {}).items()},
                "metrics": {k[: -len("_mean")]: float(v)
                            for k, v in env_runners.get("custom_metrics", {}).items() if k.endswith("_mean")},
            })
        policies = {a.policy_id: algo.get_policy(a.policy_id) for a in algo.agents}
        mapping = {a.agent_id: a.policy_id for a in algo.agents}
        env = make_mpe_env(scenario, env_config)
        evaluation = run_episodes(policies, mapping, env, eval_episodes, seed=10_000 + seed)
        result = {
            "name": name, "seed": seed, "steps": curve[-1]["env_steps"],
            "train_seconds": time.time() - start, "curve": curve,
            "eval_returns": dict(zip(map(str, evaluation.agent_ids), evaluation.returns.mean(0).tolist())),
            "eval_metrics": evaluation.mean_task_metrics(),
        }
        if name.startswith("t6_"):
            result["weights"] = {pid: p.get_weights() for pid, p in policies.items()}
        return result
    finally:
        algo.stop()


def _worker(queue, done, steps, eval_episodes, out):
    while True:
        job = queue.get()
        if job is None:
            return
        name, seed = job
        try:
            result = train_and_evaluate(name, seed, steps, eval_episodes)
        except Exception as e:  # report it and go on with the other runs
            done.put((name, seed, f"failed: {e!r}"))
            continue
        weights = result.pop("weights", None)
        if weights is not None:
            np.save(os.path.join(out, "runs", f"{name}_{seed}_weights.npy"), weights, allow_pickle=True)
        with open(os.path.join(out, "runs", f"{name}_{seed}.json"), "w") as f:
            json.dump(result, f)
        done.put((name, seed, result["train_seconds"]))


def cross_play_t6(out: str, seeds: List[int], eval_episodes: int) -> Dict[str, float]:
    """Table 6: ensemble good agent vs single adversary and vice versa (same seed)."""
    import ray  # noqa: F401

    import rllib_maddpg  # noqa: F401
    from rllib_maddpg import MADDPGConfig
    from rllib_maddpg.envs import make_mpe_env
    from rllib_maddpg.evaluation import run_episodes

    def policies_of(name, seed):
        path = os.path.join(out, "runs", f"{name}_{seed}_weights.npy")
        if not os.path.exists(path):
            return None
        weights = np.load(path, allow_pickle=True).item()
        config = MADDPGConfig().environment("mpe/simple_push").update_from_dict(EXPERIMENTS[name][2])
        config.validate()
        built = {}
        for agent in config._maddpg_agents:
            spec = config.policies[agent.policy_id]
            policy_config = {**config.to_dict(), **(spec.config or {}), "__policy_id": agent.policy_id}
            policy = spec.policy_class(spec.observation_space, spec.action_space, policy_config)
            policy.set_weights(weights[agent.policy_id])
            built[agent.policy_id] = policy
        return built

    frames = {"ensemble agent vs single adversary": [], "single agent vs ensemble adversary": []}
    for seed in seeds:
        ens, single = policies_of("t6_ensemble", seed), policies_of("t6_single", seed)
        if ens is None or single is None:
            continue
        env = make_mpe_env("simple_push")
        mapping = {"adversary_0": "adversary_0", "agent_0": "agent_0"}
        for label, mix in (("ensemble agent vs single adversary", {"agent_0": ens["agent_0"], "adversary_0": single["adversary_0"]}),
                           ("single agent vs ensemble adversary", {"agent_0": single["agent_0"], "adversary_0": ens["adversary_0"]})):
            r = run_episodes(mix, mapping, env, eval_episodes, seed=20_000 + seed)
            frames[label].append(r.mean_task_metrics()["agent_on_goal_frames"])
    return {k: float(np.mean(v)) for k, v in frames.items() if v}


def summarize(out: str, names: List[str], seeds: List[int], eval_episodes: int) -> str:
    runs = {}
    for name in names:
        for seed in seeds:
            path = os.path.join(out, "runs", f"{name}_{seed}.json")
            if os.path.exists(path):
                with open(path) as f:
                    runs.setdefault(name, []).append(json.load(f))

    def mean_sd(values, percent=False):
        values = np.asarray(values, float) * (100 if percent else 1)
        unit = "%" if percent else ""
        return f"{values.mean():.1f}{unit} ± {values.std():.1f}" if percent else f"{values.mean():.3f} ± {values.std():.3f}"

    lines = ["| experiment | setting | ours (mean ± sd over seeds) | paper | seeds | env steps | train time |",
             "|---|---|---|---|---|---|---|"]
    for name in names:
        if name not in runs:
            continue
        rs = runs[name]
        metrics = {k: [r["eval_metrics"][k] for r in rs] for k in rs[0]["eval_metrics"]}
        shown = ", ".join(
            f"{k} {mean_sd(v, percent=k.endswith(('_success', '_reached')))}"
            for k, v in metrics.items() if k != "success_difference"
        )
        minutes = np.mean([r["train_seconds"] for r in rs]) / 60
        lines.append(f"| {name} | {EXPERIMENTS[name][3]} | {shown} | {PAPER.get(name, '')} | "
                     f"{len(rs)} | {rs[0]['steps']:,} | {minutes:.1f} min |")
    if "t6_ensemble" in runs and "t6_single" in runs:
        cross = cross_play_t6(out, seeds, eval_episodes)
        for label, value in cross.items():
            lines.append(f"| t6 cross-play | {label} | agent_on_goal_frames {value:.2f} | table 6 | "
                         f"{len(seeds)} | | |")
    return "\n".join(lines)


def plot(out: str, names: List[str], seeds: List[int]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for group, members in GROUPS.items():
        members = [m for m in members if m in names]
        curves = {}
        for name in members:
            for seed in seeds:
                path = os.path.join(out, "runs", f"{name}_{seed}.json")
                if os.path.exists(path):
                    with open(path) as f:
                        curves.setdefault(name, []).append(json.load(f)["curve"])
        if not curves:
            continue
        first = next(iter(curves.values()))[0][-1]["metrics"]
        metric_names = list(first) or ["team return"]
        fig, axes = plt.subplots(1, len(metric_names), figsize=(4.5 * len(metric_names), 3.2), squeeze=False)
        for ax, metric in zip(axes[0], metric_names):
            for name, runs in curves.items():
                for i, curve in enumerate(runs):
                    x = [p["env_steps"] for p in curve]
                    y = ([p["metrics"].get(metric, np.nan) for p in curve] if metric != "team return"
                         else [sum(p["returns"].values()) for p in curve])
                    ax.plot(x, y, color=f"C{list(curves).index(name)}", alpha=0.8,
                            label=EXPERIMENTS[name][3] if i == 0 else None)
            ax.set_title(metric)
            ax.set_xlabel("env steps")
            ax.legend(fontsize=7)
        fig.suptitle(f"{group}: {EXPERIMENTS[members[0]][0]} (training, with exploration)")
        fig.tight_layout()
        fig.savefig(os.path.join(out, f"{group}.png"), dpi=90)
        plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", choices=sorted(GROUPS), help="tables to run (default all)")
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=300_000, help="training env steps per run")
    parser.add_argument("--eval-episodes", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel (one CPU each)")
    parser.add_argument("--out", default="docs/results")
    parser.add_argument("--plot", action="store_true", help="write learning curves as PNG (matplotlib)")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    names = list(dict.fromkeys(n for g in (args.only or GROUPS) for n in GROUPS[g]))
    os.makedirs(os.path.join(args.out, "runs"), exist_ok=True)
    jobs = [(n, s) for n in names for s in args.seeds
            if not os.path.exists(os.path.join(args.out, "runs", f"{n}_{s}.json"))]
    print(f"{len(jobs)} runs to do ({len(names) * len(args.seeds) - len(jobs)} already saved), "
          f"{args.steps:,} env steps each, {args.jobs} at a time", flush=True)
    if jobs:
        ctx = mp.get_context("spawn")
        queue, done = ctx.Queue(), ctx.Queue()
        for job in jobs:
            queue.put(job)
        workers = [ctx.Process(target=_worker, args=(queue, done, args.steps, args.eval_episodes, args.out))
                   for _ in range(min(args.jobs, len(jobs)))]
        for w in workers:
            queue.put(None)
            w.start()
        for i in range(len(jobs)):
            name, seed, seconds = done.get()
            took = seconds if isinstance(seconds, str) else f"{seconds / 60:.1f} min"
            print(f"  [{i + 1}/{len(jobs)}] {name} seed {seed}: {took}", flush=True)
        for w in workers:
            w.join()
    table = summarize(args.out, names, args.seeds, args.eval_episodes)
    print(table)
    with open(os.path.join(args.out, "table.md"), "w") as f:
        f.write(table + "\n")
    if args.plot:
        plot(args.out, names, args.seeds)


if __name__ == "__main__":
    main()
