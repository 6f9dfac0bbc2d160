"""Fault injection: MADDPG on a two-node cluster while env runners and the worker node are killed.

    python benchmarks/fault_injection.py                  # 40k env steps: 3 runner kills, 1 node loss, + fault-free run
    python benchmarks/fault_injection.py --env-steps 6000 --runner-kills 0 --no-baseline   # the short version
    python benchmarks/fault_injection.py --learners per_agent --runner-kills 0   # learner actors lost and back

Starts a real two-node Ray cluster on this machine (tests/local_cluster.py:
head with 1 CPU; worker with 1 CPU and the resource `env_runner_node`, which
the one env runner requires) and trains mpe/simple_spread with the tuned
examples' fault-tolerance keys for a fixed env-step budget. Between
iterations it SIGKILLs the env runner process at `--runner-kills` random
env-step points (seeded) and, once, at `--node-kill-at` of the budget, the
worker node's raylet (a preempted machine or an OOM-killed raylet); a
replacement worker node with the same resources starts
`--replacement-delay-s` later. If the runner is not back when the budget is
reached, training goes on until it is (at most `--recovery-timeout-s`), so
the run always ends with the replacement node's runner in use or says it
did not. With `--learners per_agent` (or `data_parallel`) the learner actors
need the worker node's resource `learner_node` too: they are lost with the
node, the driver learns meanwhile, and the run also waits (at most
`--recovery-timeout-s`) for new learner actors on the replacement node.
Then a fault-free run with the same seed on the same cluster.

Prints, per run: faults injected, restarts, env steps lost (the fragments in
flight when a fault hit: sampled, never delivered), time degraded, env steps
sampled on the driver meanwhile, wall-clock time, and the final greedy
return (team return of `--eval-episodes` noise-free episodes); then the
wall-clock cost of the faults, and, last, one JSON line.
"""

import argparse
import json
import os
import signal
import sys
import threading
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The two-node cluster helper is test support (tests/local_cluster.py), not part of the package.
sys.path.insert(0, os.path.join(REPO, "tests"))

RUNNER_RESOURCE = "env_runner_node"
LEARNER_RESOURCE = "learner_node"  # with --learners: the learner actors live on the worker node too
WORKER_RESOURCES = {RUNNER_RESOURCE: 1, LEARNER_RESOURCE: 3}
LEARNERS = {"none": {}, "per_agent": {"per_agent_learners": True}, "data_parallel": {"data_parallel_learners": 2}}


def build(args):
    from rllib_maddpg import MADDPGConfig

    config = (
        MADDPGConfig()
        .environment("mpe/simple_spread")
        .env_runners(num_env_runners=1, num_envs_per_env_runner=4, rollout_fragment_length=25,
                     custom_resources_per_env_runner={RUNNER_RESOURCE: 1})
        .fault_tolerance(restart_failed_env_runners=True, max_num_env_runner_restarts=1000,
                         env_runner_wait_timeout_s=args.wait_timeout_s)
        .reporting(min_sample_timesteps_per_iteration=args.steps_per_iteration)
        .training(num_steps_sampled_before_learning_starts=args.learning_starts,
                  env_steps_per_update=100)
        .debugging(seed=args.seed)
    )
    if LEARNERS[args.learners]:
        config.learners(learner_resources={"CPU": 0, LEARNER_RESOURCE: 1}, **LEARNERS[args.learners])
    return config.build_algo()


def learner_nodes(algo) -> set:
    """The nodes the learner actors are on now (empty while the driver learns)."""
    from rllib_maddpg.fault_tolerance import node_of

    return {node_of(actor) for actor in algo.learners.actors().values()} if algo.learners else set()


def runner_node(algo) -> str:
    """The node the env runner's actor is on now (GCS actor table)."""
    from rllib_maddpg.fault_tolerance import node_of
    from rllib_maddpg.ray_compat import worker_manager

    (actor,) = worker_manager(algo.env_runner_group).actors().values()
    return node_of(actor)


def greedy_return(algo, episodes: int, seed: int) -> float:
    from rllib_maddpg.envs.mpe import make_mpe_env
    from rllib_maddpg.evaluation import run_algorithm_episodes

    result = run_algorithm_episodes(algo, make_mpe_env("simple_spread", {}), episodes,
                                    explore=False, seed=10_000 + seed)
    return float(result.returns.sum(1).mean())


def run(args, cluster, inject: bool) -> dict:
    rng = np.random.default_rng(args.seed)
    runner_kills = sorted(rng.uniform(0.1, 0.9, args.runner_kills) * args.env_steps) if inject else []
    node_kill = args.node_kill_at * args.env_steps if inject and args.node_kill_at is not None else None
    out = {"faults_injected": 0, "runner_kills": 0, "node_kills": 0, "env_steps_lost": 0}
    algo = build(args)
    fragment = algo.config.rollout_fragment_length * algo.config.num_envs_per_env_runner
    killed_node = replacement_node = None
    start = time.time()
    try:
        steps, result, recovered_at, at_budget, learners_back_at = 0, None, None, None, None
        while True:
            result = algo.train()
            steps = result["num_env_steps_sampled_lifetime"]
            if steps >= args.env_steps and at_budget is None:
                at_budget = time.time() - start
            down = result["fault_tolerance"]["num_env_runners_down"]
            group = algo.env_runner_group
            if killed_node and not down and recovered_at is None and runner_node(algo) != killed_node:
                recovered_at = steps
            learners_back = (not LEARNERS[args.learners] or killed_node is None
                             or bool(learner_nodes(algo)) and killed_node not in learner_nodes(algo))
            if learners_back and learners_back_at is None and killed_node:
                learners_back_at = steps
            if steps >= args.env_steps and (killed_node is None or recovered_at is not None and learners_back
                                            or time.time() - start > args.recovery_timeout_s):
                break
            if runner_kills and steps >= runner_kills[0] and not down:
                runner_kills.pop(0)
                (pid,) = group.foreach_env_runner(lambda w: os.getpid(), local_env_runner=False)
                out["env_steps_lost"] += group.num_in_flight_async_reqs() * fragment
                os.kill(pid, signal.SIGKILL)
                out["runner_kills"] += 1
                print(f"  [fault] env steps {steps:,}: SIGKILL env runner (pid {pid})", flush=True)
            elif node_kill is not None and steps >= node_kill and not down:
                node_kill = None
                killed_node = runner_node(algo)
                out["env_steps_lost"] += group.num_in_flight_async_reqs() * fragment
                cluster.kill_node(cluster.nodes[-1])
                out["node_kills"] += 1
                print(f"  [fault] env steps {steps:,}: SIGKILL the worker node's raylet "
                      f"(node {killed_node[:8]}); a replacement starts in {args.replacement_delay_s:.0f} s",
                      flush=True)
                timer = threading.Timer(args.replacement_delay_s, cluster.add_node, (WORKER_RESOURCES,))
                timer.daemon = True
                timer.start()
            learners = (f"learners {'on ' + ','.join(n[:8] for n in learner_nodes(algo)) if algo.learners else 'down'} | "
                        if LEARNERS[args.learners] else "")
            print(f"  iter {result['training_iteration']:3d} | env steps {steps:7,} | "
                  f"runners down {down} | on driver {result['fault_tolerance']['env_steps_sampled_on_driver']:6,} | "
                  f"{learners}{time.time() - start:6.1f} s", flush=True)
        if recovered_at is not None:
            # One more iteration: the env steps the restarted runner delivered.
            before, result = result, algo.train()
            steps = result["num_env_steps_sampled_lifetime"]
            out["env_steps_by_restarted_runner"] = (
                steps - before["num_env_steps_sampled_lifetime"]
                - result["fault_tolerance"]["env_steps_sampled_on_driver"]
                + before["fault_tolerance"]["env_steps_sampled_on_driver"])
        ft = result["fault_tolerance"]
        if killed_node:
            replacement_node = runner_node(algo)
        out.update({
            "faults_injected": out["runner_kills"] + out["node_kills"],
            "restarts": result["num_remote_worker_restarts"],
            "env_steps": steps,
            "degraded_time_s": round(ft["degraded_time_s"], 1),
            "env_steps_sampled_on_driver": ft["env_steps_sampled_on_driver"],
            "runner_back_at_env_steps": recovered_at,
            "runner_on_replacement_node": bool(killed_node) and not ft["num_env_runners_down"]
            and replacement_node != killed_node,
            "learners": args.learners,
            "learner_fallbacks": ft["num_learner_fallbacks"],
            "learner_returns": ft["num_learner_returns"],
            "learners_down_time_s": round(ft["learners_down_time_s"], 1),
            "learners_back_at_env_steps": learners_back_at if LEARNERS[args.learners] else None,
            "learners_on_replacement_node": bool(LEARNERS[args.learners]) and bool(killed_node)
            and bool(learner_nodes(algo)) and killed_node not in learner_nodes(algo),
            "wall_clock_s": round(at_budget, 1),  # to the budget (not the wait for the runner past it)
            "greedy_return": round(greedy_return(algo, args.eval_episodes, args.seed), 2),
        })
        return out
    finally:
        algo.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env-steps", type=int, default=40_000, help="env-step budget of each run")
    parser.add_argument("--steps-per-iteration", type=int, default=1000)
    parser.add_argument("--learning-starts", type=int, default=5000)
    parser.add_argument("--runner-kills", type=int, default=3, help="env runner SIGKILLs at random env-step points")
    parser.add_argument("--node-kill-at", type=float, default=0.4,
                        help="kill the worker node at this fraction of the budget (once)")
    parser.add_argument("--replacement-delay-s", type=float, default=15.0)
    parser.add_argument("--wait-timeout-s", type=float, default=60.0,
                        help="env_runner_wait_timeout_s: wait this long before sampling on the driver")
    parser.add_argument("--recovery-timeout-s", type=float, default=300.0,
                        help="past the budget, train at most this long (from the start) for the runner to come back")
    parser.add_argument("--eval-episodes", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-baseline", action="store_true", help="skip the fault-free run")
    parser.add_argument("--learners", choices=sorted(LEARNERS), default="none",
                        help="learner actors on the worker node too (lost with it, back on its replacement)")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # The token reaches this driver through the environment, set before `import ray`.
    token = os.urandom(32).hex()
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token)
    from local_cluster import two_node_cluster

    # worker_niceness=0: see local_cluster.two_node_cluster (one shared machine).
    with two_node_cluster({}, WORKER_RESOURCES, num_cpus=1, token=token, worker_niceness=0) as cluster:
        os.environ.update(cluster.env)
        import ray

        ray.init(address=cluster.address, log_to_driver=False, logging_level="ERROR")
        deadline = time.time() + 60
        while len([n for n in ray.nodes() if n["Alive"]]) < 2 and time.time() < deadline:
            time.sleep(0.5)
        print(f"two-node cluster: head {cluster.address} (1 CPU), worker (1 CPU, {RUNNER_RESOURCE!r})", flush=True)
        runs = {}
        print("with faults:", flush=True)
        runs["faults"] = run(args, cluster, inject=True)
        if not args.no_baseline:
            print("fault-free, same seed:", flush=True)
            runs["fault_free"] = run(args, cluster, inject=False)
        ray.shutdown()

    print()
    keys = ["faults_injected", "runner_kills", "node_kills", "restarts", "env_steps_lost", "degraded_time_s",
            "env_steps_sampled_on_driver", "env_steps", "runner_on_replacement_node", "learners",
            "learner_fallbacks", "learner_returns", "learners_down_time_s", "learners_on_replacement_node",
            "wall_clock_s", "greedy_return"]
    print(f"{'':30s}" + "".join(f"{name:>14s}" for name in runs))
    for key in keys:
        print(f"{key:30s}" + "".join(f"{str(r.get(key, '-')):>14s}" for r in runs.values()))
    if "fault_free" in runs:
        cost = runs["faults"]["wall_clock_s"] - runs["fault_free"]["wall_clock_s"]
        runs["wall_clock_cost_s"] = round(cost, 1)
        print(f"wall-clock cost of the faults: {cost:+.1f} s")
    print(json.dumps({"args": vars(args), **runs}))


if __name__ == "__main__":
    main()
