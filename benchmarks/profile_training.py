"""Where a MADDPG training step spends its time, by part, under cProfile.

    python benchmarks/profile_training.py --env simple_adversary --sampler lockstep
    python benchmarks/profile_training.py --env simple_adversary --sampler rllib

Trains past the warm-up, then profiles `--steps` env steps of training in
the driver (no remote runners) and splits the time into: the env itself,
the actors' action computation, the rest of sampling (RLlib's connectors and
collectors, or the lockstep loop), postprocessing (joint columns), replay,
and the learner. cProfile slows small Python calls more than big ones, so
compare shares, not absolute times.
"""

import argparse
import cProfile
import os
import pstats
import time


def cumulative(stats: pstats.Stats, file_part: str, function: str) -> float:
    total = 0.0
    for (filename, _, name), (_, _, _, cum, _) in stats.stats.items():
        if name == function and file_part in filename:
            total += cum
    return total


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="simple_adversary")
    parser.add_argument("--sampler", choices=["lockstep", "rllib"], default="lockstep")
    parser.add_argument("--envs-per-runner", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20_000)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    import ray

    import rllib_maddpg  # noqa: F401
    from rllib_maddpg import MADDPGConfig

    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    config = (
        MADDPGConfig()
        .environment(f"mpe/{args.env}")
        .env_runners(num_env_runners=0, num_envs_per_env_runner=args.envs_per_runner,
                     rollout_fragment_length=25, use_lockstep_sampler=args.sampler == "lockstep")
        .reporting(min_sample_timesteps_per_iteration=args.steps)
        .debugging(seed=0)
    )
    algo = config.build_algo()
    while algo._counters["num_env_steps_sampled"] < config.num_steps_sampled_before_learning_starts:
        algo.train()
    profile = cProfile.Profile()
    start = time.perf_counter()
    profile.enable()
    result = algo.train()
    profile.disable()
    seconds = time.perf_counter() - start
    algo.stop()
    ray.shutdown()

    stats = pstats.Stats(profile)
    total = cumulative(stats, "rllib_maddpg/maddpg.py", "training_step")
    sampling = cumulative(stats, "rllib_maddpg/maddpg.py", "_sample")
    env = cumulative(stats, "envs/pettingzoo_env.py", "step") + cumulative(stats, "envs/pettingzoo_env.py", "reset")
    actions = cumulative(stats, "rllib_maddpg/policy.py", "compute_actions_from_input_dict")
    postprocess = cumulative(stats, "rllib_maddpg/policy.py", "postprocess_trajectory")
    replay = cumulative(stats, "rllib_maddpg/core/replay.py", "add") + cumulative(stats, "rllib_maddpg/core/replay.py", "sample")
    learner = cumulative(stats, "rllib_maddpg/maddpg.py", "update")
    parts = {
        "env (mpe2 + wrapper)": env,
        "actors (compute_actions)": actions,
        "postprocessing (joint columns)": postprocess,
        "other sampling (collectors / lockstep loop)": sampling - env - actions - postprocess,
        "replay add + sample": replay,
        "learner (updates of all agents)": learner - cumulative(stats, "rllib_maddpg/core/replay.py", "sample"),
    }
    parts["rest of training_step"] = total - sum(parts.values())
    steps = result["num_env_steps_sampled_this_iter"]
    print(f"{args.env}, {args.sampler} sampler, {args.envs_per_runner} envs: {steps} env steps in "
          f"{seconds:.1f} s under cProfile ({steps / seconds:.0f} steps/s profiled)")
    for name, value in parts.items():
        print(f"  {name:<45} {value:7.2f} s  {value / total:6.1%}  {1e6 * value / steps:7.1f} us/step")


if __name__ == "__main__":
    main()
