"""Training throughput of rllib_maddpg next to the raw environment, measured in one run.

    python benchmarks/throughput.py --env simple_adversary [--runners R] [--envs-per-runner E]
    python benchmarks/throughput.py --env simple_spread --peer agilerl \
        [--peer-python /work/.venv-agilerl/bin/python] [--peer-steps N]
    python benchmarks/throughput.py --env simple_spread --compare-batched 3 6 12 \
        [--window 2000] [--windows 2]
    /work/venv-jax/bin/python benchmarks/throughput.py --env simple_spread --compare-paths 3 6 12 \
        [--batched-envs 256] [--batched-fragment 10] [--window 6000] [--windows 2]

1. Raw env: mpe2's parallel_env stepped with random actions in this process
   (one joint step = one `step()` for all agents), resets included; `ratio`
   is training over this. Also the same scenario without PettingZoo's
   OrderEnforcing/ClipOutOfBounds wrappers, as the plugin steps it (about
   twice as fast: those wrappers' attribute forwarding is half of mpe2's
   stepping time), and the ratio over that.
2. Training with the paper's schedule: one update of every agent on a
   minibatch of 1024 per 100 env steps, after 25,600 warm-up steps. The
   warm-up is not timed; the window after it is.

3. With `--peer agilerl`: AgileRL's MADDPG (benchmarks/peers/bench_agilerl.py,
   its own default hyperparameters) on the same scenario, in a subprocess with
   the interpreter of its own venv (benchmarks/peers/setup_agilerl.sh creates
   it) and one torch thread, as ours has. Its steps until learning starts
   (64) and 1,000 more are not timed; the next `--peer-steps` are.

4. With `--compare-batched N ...` (instead of 1-3): for each number of agents
   N (env_config {"N": N}, e.g. simple_spread), today's per-agent updates
   (`batched_update="off"`) against the batched learner ("on") in one
   algorithm: after the warm-up, timed windows of `--window` env steps
   alternate between the two paths in ABBA order (`--windows` per path), so
   drifting load on the machine hits both alike. The last line is then one
   JSON object with, per N, each path's env steps/s, update rounds/s and
   learner time share, and their ratio.

5. With `--compare-paths N ...` (instead of 1-4; run it in the jaxmarl venv,
   benchmarks/setup_jaxmarl_venv.sh): for each N, three paths in one run:
   "per_agent" (today's: mpe2, one update per agent), "batched_learner"
   (mpe2, batched_update="on"; the same algorithm as per_agent, switched) and
   "batched_env" (env_config backend="jaxmarl": the lockstep sampler steps
   `--batched-envs` copies in one call, with the batched learner), in
   rotating timed windows (ABC, CBA, ...). Before and after the windows, the
   learner alone (`algo.update()` in a loop, `--ceiling-seconds` each) gives
   each learner's ceiling: env steps per update round (100) over the round's
   time. One JSON line per N: each path's env steps/s, the ratios to
   per_agent, and batched_env over its learner's ceiling.

Prints human-readable figures and, as its last line, one JSON object with
train_env_steps_per_s, raw_env_steps_per_s, ratio and learner_updates_per_s
(update rounds per second; one round updates every agent); with a peer also
agilerl_env_steps_per_s, ratio_vs_agilerl (ours / AgileRL) and
agilerl_updates_per_s (its learn() calls per second: batch 64, one per 16 env
steps), the same rates per CPU-second of each training process (less
sensitive to other jobs on the machine), plus the 1-minute load average
before and after each part.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np


def raw_env_rate(scenario: str, steps: int, seed: int, wrapped: bool = True) -> float:
    """Joint env steps per second of mpe2 itself, random actions, continuous mode.

    wrapped=True: mpe2's `parallel_env(...)`, as a user gets it (PettingZoo's
    OrderEnforcing and ClipOutOfBounds wrappers inside). wrapped=False: the
    same scenario as the plugin steps it, `aec_to_parallel(raw_env(...))`
    (see rllib_maddpg/envs/mpe.py).
    """
    import importlib

    from pettingzoo.utils.conversions import aec_to_parallel

    from rllib_maddpg.envs.mpe import _SCENARIO_MODULES

    module = importlib.import_module(_SCENARIO_MODULES[scenario])
    kwargs = dict(continuous_actions=True, max_cycles=25)
    env = module.parallel_env(**kwargs) if wrapped else aec_to_parallel(module.raw_env(**kwargs))
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    shapes = {a: env.action_space(a).shape for a in env.possible_agents}
    for t in range(-500, steps):  # 500 untimed warm-up steps
        if t == 0:
            start = time.perf_counter()
        env.step({a: rng.random(shapes[a], dtype=np.float32) for a in env.agents})
        if not env.agents:
            env.reset()
    return steps / (time.perf_counter() - start)


LEARNER_DEVICE = {}  # the device the last algorithm built learns on (its policies')


def warmed_up_algorithm(args, env_config=None, batched_update="off", iteration_steps=5000, env_id=None):
    """A MADDPG algorithm (Ray already up) trained through the paper's warm-up, and its last result."""
    import rllib_maddpg  # noqa: F401
    from rllib_maddpg import MADDPGConfig

    config = (
        MADDPGConfig()
        .environment(env_id or f"mpe/{args.env}", env_config=env_config or {})
        .env_runners(
            num_env_runners=args.runners,
            num_envs_per_env_runner=args.envs_per_runner,
            rollout_fragment_length=args.fragment,
        )
        .learners(batched_update=batched_update)
        .resources(num_gpus=getattr(args, "num_gpus", 0))  # the learner's device (1: the GPU)
        .update_from_dict({"torch_num_threads": getattr(args, "torch_threads", 1)})
        .reporting(min_sample_timesteps_per_iteration=iteration_steps)
        .debugging(seed=args.seed)
    )
    if getattr(args, "warmup", None) is not None:
        config.training(num_steps_sampled_before_learning_starts=args.warmup)
    algo = config.build_algo()
    LEARNER_DEVICE["device"] = str(algo.agent_policies()[0].device)
    warmup = config.num_steps_sampled_before_learning_starts
    result = algo.train()
    while result["num_env_steps_sampled_lifetime"] < warmup:
        result = algo.train()
    return algo, result


def timed_window(algo, result, steps: int):
    """Trains until `steps` more env steps are sampled; (last result, figures of the window)."""
    steps0 = result["num_env_steps_sampled_lifetime"]
    rounds0 = algo._counters["maddpg_num_update_rounds"]
    timers0 = {k: algo._timers[k]._total_time for k in ("sample", "learn", "synch_weights")}
    start, cpu_start = time.perf_counter(), time.process_time()
    while result["num_env_steps_sampled_lifetime"] - steps0 < steps:
        result = algo.train()
    seconds = time.perf_counter() - start
    window = {"steps": result["num_env_steps_sampled_lifetime"] - steps0, "seconds": seconds,
              "cpu_seconds": time.process_time() - cpu_start,
              "rounds": algo._counters["maddpg_num_update_rounds"] - rounds0,
              "timer_seconds": {k: algo._timers[k]._total_time - v for k, v in timers0.items()}}
    return result, window


def training_rate(args) -> dict:
    """Env steps/s and update rounds/s of MADDPG training after the warm-up."""
    import ray

    ray.init(num_cpus=max(2, args.runners + 1), include_dashboard=False, log_to_driver=False)
    try:
        algo, result = warmed_up_algorithm(args)
        _, window = timed_window(algo, result, args.steps)
        algo.stop()
    finally:
        ray.shutdown()
    shares = {k: v / window["seconds"] for k, v in window.pop("timer_seconds").items()}
    return {**window, "shares": shares}


def compare_batched(args, n: int) -> dict:
    """Today's per-agent updates ("off") and the batched learner ("on") with N agents,
    in ABBA-ordered timed windows of one warmed-up algorithm."""
    algo, result = warmed_up_algorithm(args, {"N": n}, "on", iteration_steps=min(5000, args.window))
    totals = {mode: {"steps": 0, "seconds": 0.0, "cpu_seconds": 0.0, "rounds": 0, "learn_seconds": 0.0}
              for mode in ("off", "on")}
    for w in range(args.windows):
        for mode in (("off", "on") if w % 2 == 0 else ("on", "off")):
            algo.use_batched_update(mode)  # Adam's state carries over
            result, window = timed_window(algo, result, args.window)
            for key in ("steps", "seconds", "cpu_seconds", "rounds"):
                totals[mode][key] += window[key]
            totals[mode]["learn_seconds"] += window["timer_seconds"]["learn"]
    algo.stop()
    out = {"n": n}
    for mode, t in totals.items():
        out[mode] = {"env_steps_per_s": round(t["steps"] / t["seconds"], 1),
                     "update_rounds_per_s_of_learn_time": round(t["rounds"] / t["learn_seconds"], 2),
                     "learn_share": round(t["learn_seconds"] / t["seconds"], 3),
                     "env_steps": t["steps"], "seconds": round(t["seconds"], 1),
                     "cpu_util": round(t["cpu_seconds"] / t["seconds"], 3)}
    out["ratio_on_off"] = round(out["on"]["env_steps_per_s"] / out["off"]["env_steps_per_s"], 3)
    out["learn_speedup"] = round(out["on"]["update_rounds_per_s_of_learn_time"]
                                 / out["off"]["update_rounds_per_s_of_learn_time"], 3)
    return out


def main_compare_batched(args) -> None:
    import ray

    rows, load = [], [os.getloadavg()[0]]
    # One Ray session: the package registers "MADDPG" with Tune once, on import.
    ray.init(num_cpus=max(2, args.runners + 1), include_dashboard=False, log_to_driver=False)
    for n in args.compare_batched:
        rows.append(compare_batched(args, n))
        load.append(os.getloadavg()[0])
        row = rows[-1]
        print(f"{args.env} N={n:<3} per-agent {row['off']['env_steps_per_s']:7.1f} env steps/s, "
              f"batched {row['on']['env_steps_per_s']:7.1f} env steps/s, ratio {row['ratio_on_off']:.3f}; "
              f"learner rounds/s {row['off']['update_rounds_per_s_of_learn_time']:.2f} -> "
              f"{row['on']['update_rounds_per_s_of_learn_time']:.2f} ({row['learn_speedup']:.3f}x); "
              f"load {load[-1]:.2f}", flush=True)
    ray.shutdown()
    print(json.dumps({"env": args.env, "runners": args.runners, "envs_per_runner": args.envs_per_runner,
                      "num_gpus": args.num_gpus, "learner_device": LEARNER_DEVICE.get("device"),
                      "window_env_steps": args.window, "windows_per_path": args.windows,
                      "torch_num_threads": args.torch_threads, "comparison": rows,
                      "loadavg1": {"start": round(load[0], 2),
                                   **{f"after_n{n}": round(v, 2) for n, v in zip(args.compare_batched, load[1:])}}}))


PATHS = ("per_agent", "batched_learner", "batched_env")
# The batched_env path's env: JaxMARL's MPE (mpe2's dynamics, step for step) or VMAS's port
# of the scenario (its own dynamics: a rate only; the extra fits the GPU machine's bundle).
BATCHED_BACKENDS = {
    "jaxmarl": lambda scenario, n: (f"mpe/{scenario}", {"N": n, "backend": "jaxmarl"}),
    "vmas": lambda scenario, n: (f"vmas/{scenario}", {"n_agents": n, "max_steps": 25}),
}


def learner_ceiling(algo, seconds: float) -> float:
    """Env steps/s if sampling were free: env_steps_per_update over the time of one
    update round (`algo.update()`, minibatch sampling and target actions included)."""
    rounds, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or rounds < 3:
        algo.update()
        rounds += 1
    return algo.config.env_steps_per_update * rounds / (time.perf_counter() - start)


def compare_paths(args, n: int) -> dict:
    """per_agent / batched_learner (one mpe2 algorithm, switched) and batched_env
    (a JaxMARL-backed algorithm with the batched learner), in rotating windows."""
    iteration = min(5000, args.window)
    mpe2, result_mpe2 = warmed_up_algorithm(args, {"N": n}, "off", iteration_steps=iteration)
    jax_args = argparse.Namespace(**{**vars(args), "envs_per_runner": args.batched_envs,
                                     "fragment": args.batched_fragment})
    env_id, env_config = BATCHED_BACKENDS[args.batched_backend](args.env, n)
    jax_algo, result_jax = warmed_up_algorithm(jax_args, env_config, "on", iteration_steps=iteration,
                                               env_id=env_id)
    results = {"mpe2": result_mpe2, "jax": result_jax}

    def ceilings():
        mpe2.use_batched_update("off")
        return {"per_agent": learner_ceiling(mpe2, args.ceiling_seconds),
                "batched": learner_ceiling(jax_algo, args.ceiling_seconds)}

    before = ceilings()
    totals = {path: {"steps": 0, "seconds": 0.0, "cpu_seconds": 0.0, "rounds": 0, "learn_seconds": 0.0}
              for path in PATHS}
    for w in range(args.windows):
        for path in (PATHS if w % 2 == 0 else PATHS[::-1]):
            if path == "batched_env":
                algo, key = jax_algo, "jax"
            else:
                algo, key = mpe2, "mpe2"
                algo.use_batched_update("off" if path == "per_agent" else "on")
            results[key], window = timed_window(algo, results[key], args.window)
            for field in ("steps", "seconds", "cpu_seconds", "rounds"):
                totals[path][field] += window[field]
            totals[path]["learn_seconds"] += window["timer_seconds"]["learn"]
    after = ceilings()
    mpe2.stop()
    jax_algo.stop()
    out = {"n": n, "paths": {}}
    for path, t in totals.items():
        out["paths"][path] = {"env_steps_per_s": round(t["steps"] / t["seconds"], 1),
                              "learn_share": round(t["learn_seconds"] / t["seconds"], 3),
                              "env_steps": t["steps"], "seconds": round(t["seconds"], 1),
                              "cpu_util": round(t["cpu_seconds"] / t["seconds"], 3)}
    rate = {path: out["paths"][path]["env_steps_per_s"] for path in PATHS}
    out["ratio_batched_learner_vs_per_agent"] = round(rate["batched_learner"] / rate["per_agent"], 3)
    out["ratio_batched_env_vs_per_agent"] = round(rate["batched_env"] / rate["per_agent"], 3)
    out["learner_ceiling_env_steps_per_s"] = {
        name: {"before": round(before[name], 1), "after": round(after[name], 1)} for name in before}
    batched_ceiling = (before["batched"] + after["batched"]) / 2
    out["batched_env_vs_its_learner_ceiling"] = round(rate["batched_env"] / batched_ceiling, 3)
    out["batched_envs"], out["batched_fragment"] = args.batched_envs, args.batched_fragment
    out["batched_backend"], out["num_gpus"] = args.batched_backend, args.num_gpus
    out["learner_device"] = LEARNER_DEVICE.get("device")
    return out


def main_compare_paths(args) -> None:
    import ray

    ray.init(num_cpus=max(2, args.runners + 1), include_dashboard=False, log_to_driver=False)
    for n in args.compare_paths:
        load_before = os.getloadavg()[0]
        row = compare_paths(args, n)
        row["loadavg1"] = {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)}
        row.update(env=args.env, runners=args.runners, envs_per_runner=args.envs_per_runner,
                   window_env_steps=args.window, windows_per_path=args.windows,
                   torch_num_threads=args.torch_threads)
        p = row["paths"]
        print(f"{args.env} N={n}: per-agent {p['per_agent']['env_steps_per_s']:.1f}, batched learner "
              f"{p['batched_learner']['env_steps_per_s']:.1f}, batched env "
              f"{p['batched_env']['env_steps_per_s']:.1f} env steps/s; batched env / its learner's "
              f"ceiling {row['batched_env_vs_its_learner_ceiling']:.3f}", flush=True)
        print(json.dumps(row), flush=True)
    ray.shutdown()


PEERS = ("agilerl",)
DEFAULT_PEER_PYTHON = "/work/.venv-agilerl/bin/python"
HERE = os.path.dirname(os.path.abspath(__file__))


def check_peer(args) -> None:
    """Exit at once, with one message, if the peer's venv is not usable."""
    setup = os.path.relpath(os.path.join(HERE, "peers", "setup_agilerl.sh"))
    venv = os.path.dirname(os.path.dirname(args.peer_python))
    how = f"create it with: bash {setup} {venv}"
    if not os.path.exists(args.peer_python):
        sys.exit(f"throughput.py: error: AgileRL's venv is missing ({args.peer_python} not found); {how}")
    check = subprocess.run(
        [args.peer_python, "-c", "import agilerl.algorithms, mpe2"],
        capture_output=True, text=True,
    )
    if check.returncode != 0:
        last = (check.stderr.strip().splitlines() or ["?"])[-1]
        sys.exit(f"throughput.py: error: {args.peer_python} cannot import agilerl and mpe2 ({last}); {how}")


def peer_rate(args) -> dict:
    """AgileRL's MADDPG training rate on the same scenario, from its harness' JSON line."""
    cmd = [
        args.peer_python, os.path.join(HERE, "peers", "bench_agilerl.py"),
        "--env", args.env, "--steps", str(args.peer_steps), "--seed", str(args.seed),
        "--threads", "1", "--eval-episodes", "0",
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stderr[-3000:])
        sys.exit(f"throughput.py: error: the AgileRL run failed (exit {proc.returncode}): {' '.join(cmd)}")
    return json.loads(lines[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="simple_adversary", help="MPE scenario")
    parser.add_argument("--runners", type=int, default=0, help="remote env runners (0: sample in the driver)")
    parser.add_argument("--envs-per-runner", type=int, default=8)
    parser.add_argument("--fragment", type=int, default=25, help="rollout_fragment_length (steps per sub-env)")
    parser.add_argument("--steps", type=int, default=50_000, help="timed training env steps")
    parser.add_argument("--raw-steps", type=int, default=30_000)
    parser.add_argument("--warmup", type=int, default=None,
                        help="untimed env steps before learning starts (default: the config's 25,600); "
                             "a shorter one shortens the run; sampling from the buffer costs about the "
                             "same however full it is")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--peer", choices=PEERS, default=None,
                        help="also run this peer's MADDPG on the same scenario (in its own venv)")
    parser.add_argument("--peer-python", default=DEFAULT_PEER_PYTHON,
                        help="the peer venv's interpreter (benchmarks/peers/setup_agilerl.sh makes it)")
    parser.add_argument("--peer-steps", type=int, default=20_000,
                        help="timed env steps of the peer, after its learning starts")
    parser.add_argument("--compare-batched", type=int, nargs="+", metavar="N", default=None,
                        help="per-agent updates vs the batched learner (batched_update) for these numbers "
                             "of agents (env_config N); skips the raw env and peer parts")
    parser.add_argument("--compare-paths", type=int, nargs="+", metavar="N", default=None,
                        help="per-agent vs batched learner vs batched env (JaxMARL) for these numbers of "
                             "agents, one JSON line per N (needs the jaxmarl extra)")
    parser.add_argument("--batched-backend", choices=sorted(BATCHED_BACKENDS), default="jaxmarl",
                        help="the batched_env path's env (--compare-paths): JaxMARL's MPE or VMAS's port")
    parser.add_argument("--batched-envs", type=int, default=256,
                        help="copies stepped per call on the batched_env path (--compare-paths)")
    parser.add_argument("--batched-fragment", type=int, default=10,
                        help="rollout_fragment_length of the batched_env path (--compare-paths)")
    parser.add_argument("--ceiling-seconds", type=float, default=3.0,
                        help="seconds of learner-alone rounds per ceiling measurement (--compare-paths)")
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="config torch_num_threads of the trained algorithms (the driver's learner)")
    parser.add_argument("--num-gpus", type=int, default=0,
                        help="config.resources(num_gpus): 1 puts the learner (the driver's policies and "
                             "the replay buffer's mirror) on the GPU; env runners act on CPU")
    parser.add_argument("--window", type=int, default=2000,
                        help="env steps per timed window (--compare-batched, --compare-paths)")
    parser.add_argument("--windows", type=int, default=2,
                        help="timed windows per path (--compare-batched, --compare-paths)")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if args.compare_batched:
        return main_compare_batched(args)
    if args.compare_paths:
        return main_compare_paths(args)
    if args.peer:
        check_peer(args)

    load = {"start": os.getloadavg()[0]}
    raw_before = raw_env_rate(args.env, args.raw_steps, args.seed)
    train = training_rate(args)
    load["after_ours"] = os.getloadavg()[0]
    peer = peer_rate(args) if args.peer else None
    if peer:
        load["after_peer"] = os.getloadavg()[0]
    raw_after = raw_env_rate(args.env, args.raw_steps, args.seed)
    unwrapped = raw_env_rate(args.env, args.raw_steps, args.seed, wrapped=False)
    load["end"] = os.getloadavg()[0]
    raw = (raw_before + raw_after) / 2  # the machine's load can drift during the run
    train_rate = train["steps"] / train["seconds"]
    rounds_rate = train["rounds"] / train["seconds"]

    print(f"scenario                 {args.env}")
    print(f"raw mpe2 env             {raw:8.0f} joint steps/s  (before {raw_before:.0f}, after {raw_after:.0f})")
    print(f"MADDPG training          {train_rate:8.0f} env steps/s  "
          f"({train['steps']} steps in {train['seconds']:.1f} s, {args.runners} remote runners x "
          f"{args.envs_per_runner} envs)")
    print(f"ratio training / raw     {train_rate / raw:8.2f}")
    print(f"raw, without wrappers    {unwrapped:8.0f} joint steps/s  (the same scenario as the plugin "
          f"steps it: no OrderEnforcing/ClipOutOfBounds; ratio training / this {train_rate / unwrapped:.2f})")
    print(f"learner                  {rounds_rate:8.1f} update rounds/s (every agent, batch 1024)")
    print("time shares              " + ", ".join(f"{k} {v:.0%}" for k, v in train["shares"].items()))
    extra = {}
    if peer:
        peer_rate_ = peer["env_steps_per_s"]
        print(f"AgileRL MADDPG training  {peer_rate_:8.0f} env steps/s  "
              f"({peer['window_env_steps']} steps in {peer['window_s']:.1f} s after its learning "
              f"started at step {peer['learning_starts_at_step']}; {peer['peer']}, its defaults: "
              f"batch {peer['hyperparameters']['BATCH_SIZE']}, one learn() per "
              f"{peer['hyperparameters']['LEARN_STEP']} env steps, 1 env)")
        print(f"AgileRL learner          {peer['window_updates_per_s']:8.1f} learn() calls/s (every agent, batch "
              f"{peer['hyperparameters']['BATCH_SIZE']})")
        print(f"ratio ours / AgileRL     {train_rate / peer_rate_:8.2f}")
        # Per CPU-second of the training process: less sensitive to other jobs on the machine.
        ours_cpu = train["steps"] / train["cpu_seconds"]
        peer_cpu = peer_rate_ / peer["window_cpu_util"]
        print(f"per CPU-second           ours {ours_cpu:.0f}, AgileRL {peer_cpu:.0f} env steps "
              f"(ratio {ours_cpu / peer_cpu:.2f}; CPU use ours {train['cpu_seconds'] / train['seconds']:.0%}, "
              f"AgileRL {peer['window_cpu_util']:.0%})")
        extra = {
            "agilerl_env_steps_per_s": round(peer_rate_, 1),
            "ratio_vs_agilerl": round(train_rate / peer_rate_, 3),
            "agilerl_updates_per_s": round(peer["window_updates_per_s"], 2),
            "agilerl_window_env_steps": peer["window_env_steps"],
            "agilerl_version": peer["peer"],
            "train_env_steps_per_cpu_s": round(ours_cpu, 1),
            "agilerl_env_steps_per_cpu_s": round(peer_cpu, 1),
            "ratio_vs_agilerl_per_cpu_s": round(ours_cpu / peer_cpu, 3),
        }
    print("load average (1 min)     " + ", ".join(f"{k} {v:.2f}" for k, v in load.items()))
    print(json.dumps({
        "env": args.env,
        "runners": args.runners,
        "envs_per_runner": args.envs_per_runner,
        "warmup_env_steps": args.warmup,
        "timed_env_steps": train["steps"],
        "train_env_steps_per_s": round(train_rate, 1),
        "raw_env_steps_per_s": round(raw, 1),
        "ratio": round(train_rate / raw, 3),
        "raw_unwrapped_env_steps_per_s": round(unwrapped, 1),
        "ratio_vs_unwrapped": round(train_rate / unwrapped, 3),
        "learner_updates_per_s": round(rounds_rate, 2),
        "time_shares": {k: round(v, 3) for k, v in train["shares"].items()},
        **extra,
        "loadavg1": {k: round(v, 2) for k, v in load.items()},
    }))


if __name__ == "__main__":
    main()
