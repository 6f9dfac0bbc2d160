"""Training env steps/s of one checkout at simple_spread with N agents: to compare code versions.

    OMP_NUM_THREADS=1 PYTHONPATH=<checkout> python benchmarks/spread_train_rate.py 12 [--batched-update on]

Runs whichever rllib_maddpg PYTHONPATH gives (an older checkout too: it uses
only what every version has, plus `batched_update` when asked), with the
settings of `throughput.py --compare-batched`: one process, 8 envs, fragments
of 25, the paper's schedule, one torch thread, 6,000 env steps timed after
the 25,600-step warm-up. Prints one JSON line: env steps per second and per
CPU-second of this process (less sensitive to other jobs), its CPU share and
the load average. Runs of different checkouts are sequential: compare them
per CPU-second, and only at similar loads.
"""

import argparse
import json
import os
import time

import ray
import torch


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", type=int, help="agents (simple_spread's N)")
    parser.add_argument("--batched-update", default=None, help="the config key's value (omit for old checkouts)")
    parser.add_argument("--steps", type=int, default=6000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    import rllib_maddpg
    from rllib_maddpg import MADDPGConfig

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    config = (MADDPGConfig().environment("mpe/simple_spread", env_config={"N": args.n})
              .env_runners(num_env_runners=0, num_envs_per_env_runner=8, rollout_fragment_length=25)
              .reporting(min_sample_timesteps_per_iteration=3000).debugging(seed=0))
    if args.batched_update is not None:
        config.learners(batched_update=args.batched_update)
    algo = config.build_algo()
    load0 = os.getloadavg()[0]
    result = algo.train()
    while result["num_env_steps_sampled_lifetime"] < config.num_steps_sampled_before_learning_starts:
        result = algo.train()
    steps0 = result["num_env_steps_sampled_lifetime"]
    start, cpu_start = time.perf_counter(), time.process_time()
    while result["num_env_steps_sampled_lifetime"] - steps0 < args.steps:
        result = algo.train()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    steps = result["num_env_steps_sampled_lifetime"] - steps0
    print(json.dumps({"checkout": os.path.dirname(os.path.dirname(os.path.abspath(rllib_maddpg.__file__))),
                      "batched_update": args.batched_update, "n": args.n,
                      "env_steps_per_s": round(steps / seconds, 1), "env_steps_per_cpu_s": round(steps / cpu, 1),
                      "cpu_util": round(cpu / seconds, 3), "env_steps": steps, "seconds": round(seconds, 1),
                      "loadavg1": [round(load0, 2), round(os.getloadavg()[0], 2)]}))
    algo.stop()
    ray.shutdown()


if __name__ == "__main__":
    main()
