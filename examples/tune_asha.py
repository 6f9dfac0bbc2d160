"""Tune MADDPG's learning rates and tau on simple_spread with ASHA; print the best trial.

    python examples/tune_asha.py                                  # 8 trials, <= 300k env steps each
    python examples/tune_asha.py --num-samples 16 --max-env-steps 450000
    python examples/tune_asha.py --address auto --cluster         # on cluster.yaml's cluster

Random search over actor_lr, critic_lr (log-uniform) and tau, with the ASHA
scheduler (Li et al. 2020, "A System for Massively Parallel Hyperparameter
Tuning"): at env steps grace, grace x 3, grace x 9, ... it stops every trial
whose mean episode return is not in the top third of the trials that reached
that point, so most of the budget goes to promising configurations. The rest
of the config is tuned_examples/simple_spread.yaml's. At the end it prints the
best trial's config, return and best checkpoint, ready for `rllib evaluate`.

Each trial takes one CPU (plus one per env runner); on 2 cores two run at a
time. `ray submit cluster.yaml examples/tune_asha.py -- --address auto
--cluster` runs it on a cluster, env runners on the workers.
"""

import argparse
import os
import sys
from typing import Any, Dict, Optional

import ray
from ray import tune
from ray.tune.schedulers import ASHAScheduler

import rllib_maddpg  # noqa: F401  (registers "MADDPG" and the mpe/<scenario> envs)
from rllib_maddpg import MADDPGConfig

METRIC = "env_runners/episode_return_mean"  # team return: the sum over agents
TIME_ATTR = "num_env_steps_sampled_lifetime"


def param_space(steps_per_iteration: int, num_env_runners: int, cluster: bool,
                overrides: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """simple_spread.yaml's config with the searched keys replaced by distributions."""
    config = (
        MADDPGConfig()
        .environment("mpe/simple_spread")
        .env_runners(num_env_runners=num_env_runners, num_envs_per_env_runner=8,
                     rollout_fragment_length=25)
        .reporting(min_sample_timesteps_per_iteration=steps_per_iteration)
        .fault_tolerance(restart_failed_env_runners=True, max_num_env_runner_restarts=1000)
    )
    if cluster:  # cluster.yaml's labels: the trainable on the head, runners on the workers
        config.resources(custom_resources_for_main_process={"learner_node": 1})
        config.env_runners(custom_resources_per_env_runner={"env_runner_node": 1})
    space = config.to_dict()
    space.update(overrides or {})
    space.update(
        actor_lr=tune.loguniform(1e-3, 3e-2),
        critic_lr=tune.loguniform(1e-3, 3e-2),
        tau=tune.choice([0.005, 0.01, 0.02, 0.05]),
    )
    return space


def run(num_samples: int = 8, max_env_steps: int = 300_000, grace_env_steps: int = 50_000,
        steps_per_iteration: int = 10_000, num_env_runners: int = 0, cluster: bool = False,
        storage_path: Optional[str] = None, name: str = "simple-spread-asha",
        overrides: Optional[Dict[str, Any]] = None) -> tune.ResultGrid:
    """Runs the sweep (in the Ray that is initialized, else a local one) and returns Tune's results."""
    scheduler = ASHAScheduler(
        time_attr=TIME_ATTR, max_t=max_env_steps, grace_period=grace_env_steps,
        reduction_factor=3,
    )
    tuner = tune.Tuner(
        "MADDPG",
        param_space=param_space(steps_per_iteration, num_env_runners, cluster, overrides),
        tune_config=tune.TuneConfig(metric=METRIC, mode="max", scheduler=scheduler,
                                    num_samples=num_samples),
        run_config=tune.RunConfig(
            name=name,
            storage_path=os.path.abspath(os.path.expanduser(storage_path)) if storage_path else None,
            # ASHA ends each trial (at the latest at max_env_steps); keep its 2 best checkpoints.
            checkpoint_config=tune.CheckpointConfig(
                checkpoint_frequency=max(1, 50_000 // steps_per_iteration),
                checkpoint_at_end=True, num_to_keep=2,
                checkpoint_score_attribute=METRIC, checkpoint_score_order="max",
            ),
            verbose=1,
        ),
    )
    return tuner.fit()


def metric(result: tune.Result, key: str = METRIC) -> Any:
    """A metric by its Tune name: "env_runners/episode_return_mean" -> metrics["env_runners"][...]."""
    value = result.metrics
    for part in key.split("/"):
        value = value[part]
    return value


def report(results: tune.ResultGrid, out=sys.stdout) -> Dict[str, Any]:
    """Prints the best trial (by its last mean return) and its best checkpoint; returns them."""
    errors = [r.error for r in results if r.error]
    best = results.get_best_result(metric=METRIC, mode="max")
    checkpoint = best.get_best_checkpoint(METRIC, "max") or best.checkpoint
    summary = {
        "trials": len(results),
        "errors": len(errors),
        "config": {k: best.config[k] for k in ("actor_lr", "critic_lr", "tau")},
        "return": metric(best),
        "env_steps": best.metrics[TIME_ATTR],
        "checkpoint": checkpoint.path if checkpoint else None,
        "path": best.path,
    }
    config = ", ".join(f"{k}={v:.4g}" for k, v in summary["config"].items())
    print(f"{summary['trials']} trials ({summary['errors']} errored); best: {config}\n"
          f"  mean team return {summary['return']:.2f} after {summary['env_steps']:,} env steps\n"
          f"  trial: {summary['path']}\n"
          f"  best checkpoint: {summary['checkpoint']}\n"
          f"  rllib evaluate {summary['checkpoint']} --episodes 100", file=out)
    return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-samples", type=int, default=8, help="trials (default 8)")
    parser.add_argument("--max-env-steps", type=int, default=300_000,
                        help="env steps of a trial that is never stopped (default 300000)")
    parser.add_argument("--grace-env-steps", type=int, default=50_000,
                        help="env steps before ASHA may stop a trial (default 50000)")
    parser.add_argument("--num-env-runners", type=int, default=0,
                        help="remote env runners per trial (default 0: sample in the trainable)")
    parser.add_argument("--address", default=None,
                        help="a running Ray cluster ('auto' on its head); default: a local Ray")
    parser.add_argument("--cluster", action="store_true",
                        help="place trainables on the head and env runners on the workers, "
                        "with cluster.yaml's custom resources")
    parser.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray")
    parser.add_argument("--storage-path", default=None, help="default ~/ray_results")
    args = parser.parse_args(argv)
    if args.address:
        ray.init(address=args.address)
    else:
        ray.init(num_cpus=args.num_cpus, include_dashboard=False)
    results = run(args.num_samples, args.max_env_steps, args.grace_env_steps,
                  num_env_runners=args.num_env_runners, cluster=args.cluster,
                  storage_path=args.storage_path)
    report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
