"""Parameter sharing against one policy per agent on simple_spread with N = 3, 6, 12 agents.

    python benchmarks/sharing.py --agents 3 6 --seeds 0 1 2 --out docs/sharing
    python benchmarks/sharing.py --out docs/sharing --table-only

Each run trains MADDPG at the paper's schedule (one update per 100 env
steps, minibatch 1024, lr 1e-2) on `mpe/simple_spread` with N agents and N
landmarks, either with one policy per agent ("independent") or with one
policy shared by all agents ("shared", with or without agent ids), until
the training episode return reaches the threshold for N or the env-step
budget runs out. It records the env steps and wall-clock seconds at which
the threshold was first reached, the learning curve, and the training
throughput (env steps per second while learning, updates included, from the
first iteration past 30,000 env steps to the end), and, every
`--eval-every` iterations and at the end, the greedy return (`explore=False`:
the noise-free softmax actions, `--eval-episodes` episodes), which is what
the scripted references (`--scripted`) are comparable to. Every
run's JSON goes to `--out/runs/` as soon as it ends; a rerun skips the runs
already there (runs are short: no mid-run checkpoints). One process, one
torch thread: figures are for one CPU core.

Thresholds: simple_spread's return is summed over agents and grows with N
(random actions: -79, -206, -705 for N = 3, 6, 12, 20 episodes), so each N
has its own: the same fraction (0.63) of the random return as the tuned
N = 3 example's -50.
"""

import argparse
import json
import os
import time

import numpy as np

# Training episode return (summed over agents) that counts as solved, per N.
THRESHOLDS = {3: -50.0, 6: -130.0, 12: -445.0}
BUDGETS = {3: 450_000, 6: 600_000, 12: 600_000}
EPISODE_STEPS = 25
MODES = {
    "independent": {},
    "shared": {"shared": True, "shared_policy_agent_id": False},
    "shared_ids": {"shared": True, "shared_policy_agent_id": True},
}


def build(n: int, mode: str, seed: int, lr: float = 1e-2, hidden: int = 64, eval_every: int = 5,
          eval_episodes: int = 50, env_config: dict | None = None):
    from rllib_maddpg import MADDPGConfig

    options = dict(MODES[mode])
    config = (
        MADDPGConfig()
        .environment("mpe/simple_spread", env_config={"N": n, **(env_config or {})})
        .env_runners(num_env_runners=0, num_envs_per_env_runner=8, rollout_fragment_length=25)
        .reporting(min_sample_timesteps_per_iteration=10_000)
        .debugging(seed=seed)
        .evaluation(evaluation_interval=eval_every, evaluation_duration=eval_episodes,
                    evaluation_duration_unit="episodes", evaluation_config={"explore": False})
    )
    if options.pop("shared", False):
        config.update_from_dict({"policy_mapping_fn": {f"agent_{k}": "shared" for k in range(n)}})
    return config.training(actor_lr=lr, critic_lr=lr, actor_hiddens=[hidden, hidden],
                           critic_hiddens=[hidden, hidden], **options)


def run(n: int, mode: str, seed: int, budget: int, lr: float = 1e-2, hidden: int = 64,
        eval_every: int = 5, eval_episodes: int = 50, env_config: dict | None = None) -> dict:
    import torch

    torch.set_num_threads(1)
    algo = build(n, mode, seed, lr, hidden, eval_every, eval_episodes, env_config).build_algo()
    # Greedy evaluation runs inside train(); its time is left out of "seconds".
    eval_seconds, evaluate = [0.0], algo.evaluate

    def timed_evaluate(*args, **kwargs):
        began = time.time()
        try:
            return evaluate(*args, **kwargs)
        finally:
            eval_seconds[0] += time.time() - began

    algo.evaluate = timed_evaluate
    curve, reached = [], None
    start = time.time()
    try:
        steps = 0
        while steps < budget:
            result = algo.train()
            steps = result["num_env_steps_sampled_lifetime"]
            ret = float(result["env_runners"].get("episode_return_mean", float("nan")))
            curve.append({"env_steps": steps, "seconds": time.time() - start - eval_seconds[0], "return": ret,
                          **_task_metrics(result["env_runners"])})
            if "evaluation" in result:
                curve[-1]["greedy_return"] = _greedy_return(result["evaluation"])
            if reached is None and ret >= THRESHOLDS[n]:
                reached = curve[-1]
                break
        final_greedy = _greedy_return(algo.evaluate())
    finally:
        algo.stop()
    seconds = time.time() - start - eval_seconds[0]
    return {"n": n, "mode": mode, "seed": seed, "threshold": THRESHOLDS[n], "budget": budget, "lr": lr,
            "hidden": hidden, "env_config": env_config or {},
            "reached_env_steps": reached and reached["env_steps"],
            "reached_seconds": reached and reached["seconds"],
            "env_steps": curve[-1]["env_steps"], "seconds": seconds,
            "env_steps_per_second": learning_throughput(curve), "final_return": curve[-1]["return"],
            "final_greedy_return": final_greedy, "curve": curve}


def _task_metrics(runners: dict) -> dict:
    """simple_spread's task metrics per episode (envs/mpe_metrics.py), whatever the reward."""
    metrics = runners.get("custom_metrics", {})
    return {name: float(metrics[f"{name}_mean"]) for name in ("mean_landmark_distance", "collisions")
            if f"{name}_mean" in metrics}


def _greedy_return(evaluation: dict) -> float:
    return float(evaluation["env_runners"].get("episode_return_mean", float("nan")))


def scripted_returns(n: int, episodes: int = 100) -> dict:
    """Mean team return and task metrics (landmark distance, collisions; as
    envs/mpe_metrics.py) of four scripted policies on simple_spread with N agents
    (episode k: env seed k), the scale against which the thresholds are set:
    standing still, uniform random actions, each agent to the landmark nearest
    it at the start (no coordination), and each agent to its landmark under
    the assignment that minimises the summed distance (N <= 8; brute force).
    The scripted movers use a PD force (3 x the offset - 1 x the velocity).
    """
    import itertools

    from mpe2 import simple_spread_v3

    from rllib_maddpg.envs.mpe_metrics import SpreadMetrics

    env = simple_spread_v3.parallel_env(N=n, continuous_actions=True, max_cycles=EPISODE_STEPS)
    modes = ["standing still", "random actions", "nearest landmark"] + ["assigned landmark"] * (n <= 8)
    out = {}
    for mode in modes:
        returns, metrics = [], []
        for episode in range(episodes):
            env.reset(seed=episode)
            for k, name in enumerate(env.agents):  # every agent's own sampler, so random actions repeat
                env.action_space(name).seed(1000 * episode + k)
            world = env.unwrapped.world
            agents, landmarks = world.agents, world.landmarks
            dist = np.array([[np.linalg.norm(a.state.p_pos - lm.state.p_pos) for lm in landmarks] for a in agents])
            if mode == "assigned landmark":
                target = min(itertools.permutations(range(n)), key=lambda p: dist[range(n), list(p)].sum())
            else:
                target = dist.argmin(axis=1)
            total, tracker = 0.0, SpreadMetrics()
            tracker.reset(world)
            for _ in range(EPISODE_STEPS):
                actions = {}
                for k, name in enumerate(env.agents):
                    if mode == "random actions":
                        actions[name] = env.action_space(name).sample()
                        continue
                    force = np.zeros(2)
                    if mode != "standing still":
                        state = agents[k].state
                        force = 3.0 * (landmarks[target[k]].state.p_pos - state.p_pos) - 1.0 * state.p_vel
                    # mpe2's action vector: [no-op, left, right, down, up]; force = (right - left, up - down)
                    actions[name] = np.clip([0.0, -force[0], force[0], -force[1], force[1]], 0.0, 1.0
                                            ).astype(np.float32)
                _, rewards, _, _, _ = env.step(actions)
                total += sum(rewards.values())
                tracker.step(world)
            returns.append(total)
            metrics.append(tracker.result(world))
        out[mode] = {"return": float(np.mean(returns)),
                     **{name: float(np.mean([m[name] for m in metrics])) for name in metrics[0]}}
    env.close()
    return out


def learning_throughput(curve) -> float:
    """Env steps per second while learning (one update round per 100 env steps): from
    the first iteration past 30,000 env steps (learning starts at 25,600) to the end."""
    learning = [c for c in curve if c["env_steps"] > 30_000]
    if len(learning) < 2:
        return float("nan")
    return (learning[-1]["env_steps"] - learning[0]["env_steps"]) / (learning[-1]["seconds"] - learning[0]["seconds"])


def _variant(run: dict) -> tuple:
    return (run.get("lr", 1e-2), run.get("hidden", 64), run["budget"],
            json.dumps(run.get("env_config", {}), sort_keys=True))


def table(out: str) -> str:
    runs = [json.load(open(os.path.join(out, "runs", f))) for f in sorted(os.listdir(os.path.join(out, "runs")))]
    lines = ["| N | policies | seeds | reached threshold | env steps to threshold (median) "
             "| seconds to threshold (median) | training env steps/s | final return (median) "
             "| final greedy return (median) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for n in sorted({r["n"] for r in runs}):
        variants = sorted({_variant(r) for r in runs}, key=lambda v: (-v[0], v[1], v[2], v[3]))
        for mode, (lr, hidden, budget, env) in [(m, v) for m in MODES for v in variants]:
            rs = [r for r in runs if r["n"] == n and r["mode"] == mode and _variant(r) == (lr, hidden, budget, env)]
            if not rs:
                continue
            mode += f", lr {lr:g}" * (lr != 1e-2) + f", 2x{hidden}" * (hidden != 64) + f", {env}" * (env != "{}")
            hit = [r for r in rs if r["reached_env_steps"] is not None]
            steps = f"{np.median([r['reached_env_steps'] for r in hit]):,.0f}" if hit else "-"
            secs = f"{np.median([r['reached_seconds'] for r in hit]):.0f}" if hit else "-"
            greedy = [r["final_greedy_return"] for r in rs if "final_greedy_return" in r]
            greedy = f"{np.median(greedy):.1f}" if greedy else "-"
            lines.append(
                f"| {n} | {mode} | {len(rs)} | {len(hit)}/{len(rs)} (>= {THRESHOLDS[n]:g} within "
                f"{budget:,}) | {steps} | {secs} | "
                f"{np.median([learning_throughput(r['curve']) for r in rs]):,.0f} | "
                f"{np.median([r['final_return'] for r in rs]):.1f} | {greedy} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, nargs="*", default=[3], choices=sorted(THRESHOLDS))
    parser.add_argument("--modes", nargs="*", default=list(MODES), choices=list(MODES))
    parser.add_argument("--seeds", type=int, nargs="*", default=[0])
    parser.add_argument("--budget", type=int, default=None,
                        help="env steps per run (default: BUDGETS[N]); e.g. a short N=12 run for throughput")
    parser.add_argument("--lr", type=float, default=1e-2, help="actor and critic lr (paper: 1e-2)")
    parser.add_argument("--hidden", type=int, default=64, help="units of both hidden layers (paper: 64)")
    parser.add_argument("--env-config", type=json.loads, default={}, metavar="JSON",
                        help="more env_config of mpe/simple_spread, e.g. '{\"num_landmark_neighbors\": 3}'")
    parser.add_argument("--eval-every", type=int, default=5,
                        help="greedy evaluation every this many iterations of 10,000 env steps")
    parser.add_argument("--eval-episodes", type=int, default=50)
    parser.add_argument("--out", default="docs/sharing")
    parser.add_argument("--table-only", action="store_true")
    parser.add_argument("--scripted", action="store_true",
                        help="only print the returns of scripted policies for each N of --agents")
    args = parser.parse_args()
    for flag in ("budget", "lr", "hidden", "eval_every", "eval_episodes"):
        value = getattr(args, flag)
        if value is not None and value <= 0:
            parser.error(f"--{flag.replace('_', '-')} must be positive, got {value}")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if args.scripted:
        for n in args.agents:
            print(f"N={n} (threshold {THRESHOLDS[n]:g}; 100 episodes):", flush=True)
            for mode, m in scripted_returns(n).items():
                print(f"  {mode:<18} return {m['return']:7.1f}, landmark distance "
                      f"{m['mean_landmark_distance']:.3f}, collisions {m['collisions']:.2f}", flush=True)
        return
    os.makedirs(os.path.join(args.out, "runs"), exist_ok=True)
    if not args.table_only:
        import ray

        ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
        try:
            for seed in args.seeds:
                for n in args.agents:
                    for mode in args.modes:
                        lr = "" if args.lr == 1e-2 else f"_lr{args.lr:g}"
                        lr += "" if args.hidden == 64 else f"_h{args.hidden}"
                        lr += "" if args.budget in (None, BUDGETS[n]) else f"_b{args.budget}"
                        lr += "".join(f"_{k}{v}" for k, v in sorted(args.env_config.items()))
                        path = os.path.join(args.out, "runs", f"n{n}_{mode}{lr}_{seed}.json")
                        if os.path.exists(path):
                            continue
                        result = run(n, mode, seed, args.budget or BUDGETS[n], args.lr, args.hidden,
                                     args.eval_every, args.eval_episodes, args.env_config)
                        with open(path + ".tmp", "w") as f:
                            json.dump(result, f)
                        os.replace(path + ".tmp", path)
                        print(f"N={n} {mode} seed {seed}: threshold at {result['reached_env_steps']} env steps "
                              f"({result['reached_seconds']} s), {result['env_steps_per_second']:.0f} env steps/s, "
                              f"final return {result['final_return']:.1f}, greedy {result['final_greedy_return']:.1f}",
                              flush=True)
        finally:
            ray.shutdown()
    print(table(args.out))


if __name__ == "__main__":
    main()
