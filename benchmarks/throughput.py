"""Training throughput of rllib_maddpg next to the raw environment, measured in one run.

    python benchmarks/throughput.py --env simple_adversary [--runners R] [--envs-per-runner E]

1. Raw env: mpe2's parallel_env stepped with random actions in this process
   (one joint step = one `step()` for all agents), resets included.
2. Training with the paper's schedule: one update of every agent on a
   minibatch of 1024 per 100 env steps, after 25,600 warm-up steps. The
   warm-up is not timed; the window after it is.

Prints human-readable figures and, as its last line, one JSON object with
train_env_steps_per_s, raw_env_steps_per_s, ratio and learner_updates_per_s
(update rounds per second; one round updates every agent).
"""

import argparse
import json
import os
import time

import numpy as np


def raw_env_rate(scenario: str, steps: int, seed: int) -> float:
    """Joint env steps per second of mpe2 itself, random actions, continuous mode."""
    import importlib

    from rllib_maddpg.envs.mpe import _SCENARIO_MODULES

    env = importlib.import_module(_SCENARIO_MODULES[scenario]).parallel_env(
        continuous_actions=True, max_cycles=25
    )
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    shapes = {a: env.action_space(a).shape for a in env.possible_agents}
    start = time.perf_counter()
    for _ in range(steps):
        env.step({a: rng.random(shapes[a], dtype=np.float32) for a in env.agents})
        if not env.agents:
            env.reset()
    return steps / (time.perf_counter() - start)


def training_rate(args) -> dict:
    """Env steps/s and update rounds/s of MADDPG training after the warm-up."""
    import ray

    import rllib_maddpg  # noqa: F401
    from rllib_maddpg import MADDPGConfig

    ray.init(num_cpus=max(2, args.runners + 1), include_dashboard=False, log_to_driver=False)
    try:
        config = (
            MADDPGConfig()
            .environment(f"mpe/{args.env}")
            .env_runners(
                num_env_runners=args.runners,
                num_envs_per_env_runner=args.envs_per_runner,
                rollout_fragment_length=args.fragment,
            )
            .reporting(min_sample_timesteps_per_iteration=5000)
            .debugging(seed=args.seed)
        )
        algo = config.build_algo()
        warmup = config.num_steps_sampled_before_learning_starts
        result = algo.train()
        while result["num_env_steps_sampled_lifetime"] < warmup:
            result = algo.train()
        steps0 = result["num_env_steps_sampled_lifetime"]
        rounds0 = algo._counters["maddpg_num_update_rounds"]
        timers0 = {k: algo._timers[k]._total_time for k in ("sample", "learn", "synch_weights")}
        start = time.perf_counter()
        while result["num_env_steps_sampled_lifetime"] - steps0 < args.steps:
            result = algo.train()
        seconds = time.perf_counter() - start
        steps = result["num_env_steps_sampled_lifetime"] - steps0
        rounds = algo._counters["maddpg_num_update_rounds"] - rounds0
        shares = {k: (algo._timers[k]._total_time - v) / seconds for k, v in timers0.items()}
        algo.stop()
    finally:
        ray.shutdown()
    return {"steps": steps, "seconds": seconds, "rounds": rounds, "shares": shares}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="simple_adversary", help="MPE scenario")
    parser.add_argument("--runners", type=int, default=0, help="remote env runners (0: sample in the driver)")
    parser.add_argument("--envs-per-runner", type=int, default=8)
    parser.add_argument("--fragment", type=int, default=25, help="rollout_fragment_length (steps per sub-env)")
    parser.add_argument("--steps", type=int, default=50_000, help="timed training env steps")
    parser.add_argument("--raw-steps", type=int, default=30_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    raw_before = raw_env_rate(args.env, args.raw_steps, args.seed)
    train = training_rate(args)
    raw_after = raw_env_rate(args.env, args.raw_steps, args.seed)
    raw = (raw_before + raw_after) / 2  # the machine's load can drift during the run
    train_rate = train["steps"] / train["seconds"]
    rounds_rate = train["rounds"] / train["seconds"]

    print(f"scenario                 {args.env}")
    print(f"raw mpe2 env             {raw:8.0f} joint steps/s  (before {raw_before:.0f}, after {raw_after:.0f})")
    print(f"MADDPG training          {train_rate:8.0f} env steps/s  "
          f"({train['steps']} steps in {train['seconds']:.1f} s, {args.runners} remote runners x "
          f"{args.envs_per_runner} envs)")
    print(f"ratio training / raw     {train_rate / raw:8.2f}")
    print(f"learner                  {rounds_rate:8.1f} update rounds/s (every agent, batch 1024)")
    print("time shares              " + ", ".join(f"{k} {v:.0%}" for k, v in train["shares"].items()))
    print(json.dumps({
        "env": args.env,
        "runners": args.runners,
        "envs_per_runner": args.envs_per_runner,
        "train_env_steps_per_s": round(train_rate, 1),
        "raw_env_steps_per_s": round(raw, 1),
        "ratio": round(train_rate / raw, 3),
        "learner_updates_per_s": round(rounds_rate, 2),
        "time_shares": {k: round(v, 3) for k, v in train["shares"].items()},
    }))


if __name__ == "__main__":
    main()
