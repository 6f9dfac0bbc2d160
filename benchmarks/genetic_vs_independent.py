"""Genetic MADDPG (critic sync) vs the same population without sync, at equal wall-clock.

    python benchmarks/genetic_vs_independent.py --population 2 --minutes 6

Zhou and Chen's "Distributed Genetic MADDPG" on mpe/simple_tag (3 predators,
1 prey, both trained from scratch): P MADDPG members train in parallel; in the
genetic arm, every `--sync-interval` env steps per member the member with the
best predator return sends all its critics and target critics to the others.
The independent arm is the same population (same seeds, so the same initial
networks) with `critic_sync_interval=None`. Each arm trains for the same
wall-clock budget (`--minutes`, setup excluded); the arms run one after the
other. On a shared machine the load decides how many steps fit in that
budget; `--steps-per-member` compares at equal env steps instead.

Reported per member, as the report did: the final predator return (one
predator's, `adversary_0`; simple_tag gives every predator the same reward,
the report summed the three), both RLlib's smoothed training return over the
last 100 episodes and a noise-free evaluation (`--eval-episodes`, as the
report's evaluate()); then the population's best and mean. Prints a table and,
as its last line, one JSON object.

Hyperparameters: `--hparams paper` (default) is tuned_examples/simple_tag.yaml
(the MADDPG paper's: lr 1e-2, batch 1024); `--hparams report` takes the report's
appendix (actor lr 1e-3, critic lr 1e-4, batch 256, buffer 5e5, episodes of 50
steps) but keeps one update per 100 env steps.
"""

import argparse
import json
import os
import time

import numpy as np

PREDATOR = "adversary_0"

HPARAMS = {
    "paper": dict(actor_lr=1e-2, critic_lr=1e-2, train_batch_size=1024,
                  num_steps_sampled_before_learning_starts=25600, env_config={}),
    "report": dict(actor_lr=1e-3, critic_lr=1e-4, train_batch_size=256,
                   replay_buffer_config={"capacity": 500_000},
                   num_steps_sampled_before_learning_starts=25600,
                   env_config={"max_cycles": 50}),
}


def load() -> str:
    return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def make_config(args, sync: bool):
    from rllib_maddpg.genetic import GeneticMADDPGConfig

    hparams = dict(HPARAMS[args.hparams])
    env_config = hparams.pop("env_config")
    return (
        GeneticMADDPGConfig()
        .environment("mpe/simple_tag", env_config=env_config)
        .env_runners(num_env_runners=0, num_envs_per_env_runner=8, rollout_fragment_length=25)
        .reporting(min_sample_timesteps_per_iteration=min(2500, args.sync_interval))
        .evaluation(evaluation_duration=args.eval_episodes, evaluation_duration_unit="episodes",
                    evaluation_config={"explore": False})
        .debugging(seed=args.seed)
        .training(population_size=args.population,
                  critic_sync_interval=args.sync_interval if sync else None,
                  sync_metric=f"policy_reward_mean/{PREDATOR}",
                  member_resources={"CPU": 1}, **hparams)
    )


def run_arm(args, sync: bool) -> dict:
    """Trains one population for the time budget; returns its final figures."""
    name = "genetic" if sync else "independent"
    load_before = load()
    algo = make_config(args, sync).build_algo()
    try:
        budget = args.minutes * 60
        start = time.perf_counter()
        result, iterations = None, 0

        def more():
            if args.steps_per_member:
                return result is None or (
                    result["num_env_steps_sampled_lifetime_per_member"] < args.steps_per_member)
            return time.perf_counter() - start < budget

        while more():
            result = algo.train()
            iterations += 1
            if args.verbose:
                returns = [m["policy_reward_mean"].get(PREDATOR, float("nan"))
                           for m in result["members"].values()]
                print(f"  [{name}] {time.perf_counter() - start:6.0f} s  "
                      f"steps/member {result['num_env_steps_sampled_lifetime_per_member']:>8,}  "
                      f"predator return {' '.join(f'{r:6.2f}' for r in returns)}  "
                      f"syncs {result['num_critic_syncs']}", flush=True)
        seconds = time.perf_counter() - start
        evaluation = algo.evaluate() if args.eval_episodes > 0 else None
    finally:
        algo.stop()
    members = []
    for i, member in sorted(result["members"].items(), key=lambda kv: int(kv[0])):
        row = {
            "member": int(i),
            "env_steps": member["num_env_steps_sampled_lifetime"],
            "predator_return_train": round(float(member["policy_reward_mean"].get(PREDATOR, np.nan)), 3),
        }
        if evaluation is not None:
            runners = evaluation["members"][i]["env_runners"]
            row["predator_return_eval"] = round(float(runners["policy_reward_mean"][PREDATOR]), 3)
            row["eval_episodes"] = int(runners.get("num_episodes", runners.get("episodes_this_iter", 0)))
        members.append(row)
    summary = {"arm": name, "seconds": round(seconds, 1), "iterations": iterations,
               "num_critic_syncs": result["num_critic_syncs"], "load_before": load_before,
               "load_after": load(), "members": members}
    for key in ("predator_return_train", "predator_return_eval"):
        values = [m[key] for m in members if key in m]
        if values:
            summary[f"best_{key}"] = max(values)
            summary[f"mean_{key}"] = round(float(np.mean(values)), 3)
    return summary


def print_table(arms) -> None:
    print(f"{'arm':<12} {'member':>6} {'env steps':>10} {'predator return':>16} {'(noise-free eval)':>18}")
    for arm in arms:
        for m in arm["members"]:
            print(f"{arm['arm']:<12} {m['member']:>6} {m['env_steps']:>10,} "
                  f"{m['predator_return_train']:>16.2f} {m.get('predator_return_eval', float('nan')):>18.2f}")
        print(f"{arm['arm']:<12} {'best':>6} {'':>10} {arm['best_predator_return_train']:>16.2f} "
              f"{arm.get('best_predator_return_eval', float('nan')):>18.2f}")
        print(f"{arm['arm']:<12} {'mean':>6} {'':>10} {arm['mean_predator_return_train']:>16.2f} "
              f"{arm.get('mean_predator_return_eval', float('nan')):>18.2f}")
        print(f"{arm['arm']:<12} {arm['num_critic_syncs']} critic syncs, {arm['iterations']} iterations "
              f"in {arm['seconds']:.0f} s; load {arm['load_before']} -> {arm['load_after']}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--population", type=int, default=2, help="members P per arm (each 1 CPU)")
    parser.add_argument("--minutes", type=float, default=6.0, help="training wall-clock per arm")
    parser.add_argument("--steps-per-member", type=int, default=None,
                        help="instead of --minutes: train until every member has sampled this "
                        "many env steps (equal env steps; training is deterministic per seed, "
                        "so this budget does not depend on the machine's load)")
    parser.add_argument("--sync-interval", type=int, default=5000,
                        help="env steps per member between critic syncs (the report: 5000)")
    parser.add_argument("--hparams", choices=sorted(HPARAMS), default="paper")
    parser.add_argument("--eval-episodes", type=int, default=100,
                        help="noise-free evaluation episodes per member at the end (0: none)")
    parser.add_argument("--arms", default="genetic,independent",
                        help="which arms, in this order (comma separated)")
    parser.add_argument("--seed", type=int, default=0, help="member i gets seed + i in both arms")
    parser.add_argument("--ray-num-cpus", type=int, default=None, help="default: --population")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every iteration")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    import ray

    import rllib_maddpg.genetic  # noqa: F401

    ray.init(num_cpus=args.ray_num_cpus or args.population, include_dashboard=False,
             log_to_driver=False)
    try:
        arms = [run_arm(args, sync=(arm == "genetic")) for arm in args.arms.split(",")]
    finally:
        ray.shutdown()
    budget = (f"{args.steps_per_member:,} env steps per member" if args.steps_per_member
              else f"{args.minutes:g} min per arm")
    print(f"mpe/simple_tag, P={args.population}, {budget}, "
          f"sync every {args.sync_interval} env steps/member, hparams={args.hparams}, seed={args.seed}")
    print_table(arms)
    print(json.dumps({"env": "mpe/simple_tag", "population": args.population,
                      "minutes_per_arm": None if args.steps_per_member else args.minutes,
                      "steps_per_member": args.steps_per_member, "sync_interval": args.sync_interval,
                      "hparams": args.hparams, "seed": args.seed, "arms": arms}))


if __name__ == "__main__":
    main()
