"""Learner throughput: one local learner vs per-agent learners vs L data-parallel learners.

    python benchmarks/learners.py                                  # local Ray, 2 CPUs
    python benchmarks/learners.py --two-node                       # a real two-node cluster here
    python benchmarks/learners.py --address 127.0.0.1:6379 --learner-resource learner_node
    python benchmarks/learners.py --agents 3 6 12 --widths 64 256 1024 --rounds 20

For each agent count N (mpe/simple_spread with N agents) and network width
(hidden layers [w, w] for actors and critics), fills the replay buffer, then
times `--rounds` update rounds (every agent updated once on a minibatch of
1024) for each learner mode, and training env steps/s with the paper's
schedule (one round per 100 env steps) for the same mode. With
`--learner-resource R`, learner actors ask for the custom resource R, so on
a cluster whose second node advertises R they run there (the driver and its
sampler stay on the head). `--two-node` starts such a cluster on this
machine for the run (`ray start --head` with one CPU, plus `ray start
--address=...` with one CPU and the resource `learner_node`; token
authentication with a fresh token) and stops both nodes after. Prints a
table and, last, one JSON line.
"""

import argparse
import contextlib
import json
import os
import sys
import time

# The two-node cluster helper is test support (tests/local_cluster.py), not part of the package.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))


def measure(n_agents: int, width: int, mode: str, args) -> dict:
    from rllib_maddpg import MADDPGConfig

    learners = {"local": {}, "per_agent": {"per_agent_learners": True},
                "data_parallel": {"data_parallel_learners": args.replicas}}[mode]
    resources = {"CPU": args.learner_cpus}
    if args.learner_resource:
        resources[args.learner_resource] = 0.01
    config = (
        MADDPGConfig()
        .environment("mpe/simple_spread", env_config={"N": n_agents})
        .training(actor_hiddens=[width, width], critic_hiddens=[width, width],
                  num_steps_sampled_before_learning_starts=2_000)
        .learners(learner_resources=resources, **learners)
        .env_runners(num_env_runners=0, num_envs_per_env_runner=8, rollout_fragment_length=25)
        .reporting(min_sample_timesteps_per_iteration=2_000)
        .debugging(seed=0)
    )
    algo = config.build_algo()
    try:
        algo.train()  # warm-up: fills the buffer past learning starts
        algo.update()
        start = time.perf_counter()
        for _ in range(args.rounds):
            algo.update()
        rounds_per_s = args.rounds / (time.perf_counter() - start)
        start = time.perf_counter()
        steps0 = algo._counters["num_env_steps_sampled"]
        while algo._counters["num_env_steps_sampled"] - steps0 < args.train_steps:
            algo.train()
        env_steps_per_s = (algo._counters["num_env_steps_sampled"] - steps0) / (time.perf_counter() - start)
    finally:
        algo.stop()
    return {"agents": n_agents, "width": width, "mode": mode,
            "update_rounds_per_s": round(rounds_per_s, 2), "train_env_steps_per_s": round(env_steps_per_s, 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--address", default=None, help="an existing Ray cluster (default: start a local one)")
    parser.add_argument("--agents", nargs="*", type=int, default=[3, 6, 12])
    parser.add_argument("--widths", nargs="*", type=int, default=[64, 256, 1024])
    parser.add_argument("--modes", nargs="*", default=["local", "per_agent", "data_parallel"])
    parser.add_argument("--replicas", type=int, default=2, help="L, data-parallel learners")
    parser.add_argument("--learner-cpus", type=float, default=0.05,
                        help="CPUs each learner actor reserves (fractional, so 12 fit on one CPU)")
    parser.add_argument("--learner-resource", default=None, help="custom resource the learners ask for")
    parser.add_argument("--two-node", action="store_true",
                        help="start a two-node cluster on this machine; learners on the second node")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--train-steps", type=int, default=2_000)
    args = parser.parse_args()
    if args.two_node and args.address:
        parser.error("--two-node starts its own cluster: give either --two-node or --address, not both")
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    with contextlib.ExitStack() as stack:
        if args.two_node:
            # The token reaches this driver through the environment, set before
            # `import ray` (which reads RAY_AUTH_MODE once; rllib_maddpg imports ray).
            token = os.urandom(32).hex()
            os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token)
            from local_cluster import two_node_cluster

            args.learner_resource = args.learner_resource or "learner_node"
            cluster = stack.enter_context(
                two_node_cluster({}, {args.learner_resource: 100}, num_cpus=1, token=token))
            os.environ.update(cluster.env)
            args.address = cluster.address
            print(f"two-node cluster: head {args.address} (1 CPU), worker (1 CPU, {args.learner_resource!r})",
                  flush=True)
        import ray

        import rllib_maddpg  # noqa: F401

        run(args, ray)


def run(args, ray):
    if args.address:
        ray.init(address=args.address, log_to_driver=False)
        # Wait for every node (a just-started worker takes a few seconds to join).
        deadline = time.time() + 60
        while args.two_node and len([n for n in ray.nodes() if n["Alive"]]) < 2:
            if time.time() > deadline:
                raise RuntimeError("the second node did not join")
            time.sleep(0.5)
    else:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    rows = []
    try:
        for n in args.agents:
            for width in args.widths:
                for mode in args.modes:
                    row = measure(n, width, mode, args)
                    rows.append(row)
                    print(f"N={n:<3} width={width:<5} {mode:<14} {row['update_rounds_per_s']:8.2f} rounds/s"
                          f"  {row['train_env_steps_per_s']:8.0f} env steps/s", flush=True)
    finally:
        ray.shutdown()
    print("\n| agents | width | " + " | ".join(f"{m} rounds/s (env steps/s)" for m in args.modes) + " |")
    print("|---|---|" + "---|" * len(args.modes))
    for n in args.agents:
        for width in args.widths:
            cells = []
            for mode in args.modes:
                r = next(r for r in rows if (r["agents"], r["width"], r["mode"]) == (n, width, mode))
                cells.append(f"{r['update_rounds_per_s']:.2f} ({r['train_env_steps_per_s']:.0f})")
            print(f"| {n} | {width} | " + " | ".join(cells) + " |")
    print(json.dumps({"rows": rows, "replicas": args.replicas, "address": args.address,
                      "two_node": args.two_node, "learner_resource": args.learner_resource}))


if __name__ == "__main__":
    main()
