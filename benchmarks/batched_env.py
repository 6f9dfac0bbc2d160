"""Env steps/s of the JaxMARL route (envs/jaxmarl_mpe.py) at B = 1, 64, 512 vs
the plugin's mpe2 env, simple_spread, random actions, one thread.

    bash benchmarks/setup_jaxmarl_venv.sh            # once: /work/venv-jax
    PYTHONPATH=$PWD nice -n 19 /work/venv-jax/bin/python benchmarks/batched_env.py
    PYTHONPATH=$PWD nice -n 19 /work/venv-vmas/bin/python benchmarks/batched_env.py --vmas   # VMAS's port instead

Prints one JSON line. "adapter" is JaxMARLMPE.step as a sampler would call it:
numpy actions in, numpy obs/rewards out (host<->device copies and the
auto-reset every 25 steps included). "jit_only" is the vmapped jitted step
alone on device-resident arrays (no copies, no reset): the ceiling. "mpe2" is
the plugin's make_mpe_env("simple_spread").step, one copy per call. Random
actions are drawn before timing (a pool reused cyclically). The load average
is read before and after: the machine is shared, so compare figures only
within one run.
"""

import os

# One thread, set before jax/torch are imported (the caller's values win).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import json
import platform
import sys
import time

import numpy as np

SCENARIO = "simple_spread"
SECONDS = float(os.environ.get("BENCH_SECONDS", "3"))


def _timed(fn, min_seconds):
    """Calls fn() until min_seconds have passed; returns (calls, seconds)."""
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return calls, elapsed


def bench_adapter(num_envs):
    import jax

    from rllib_maddpg.envs.jaxmarl_mpe import JaxMARLMPE

    env = JaxMARLMPE(SCENARIO, num_envs)
    rng = np.random.default_rng(0)
    pool = [{a: rng.uniform(0, 1, (num_envs,) + env.action_spaces[a].shape).astype(np.float32)
             for a in env.possible_agents} for _ in range(8)]
    t0 = time.perf_counter()
    env.reset(seed=0)
    for i in range(26):  # compiles step and the auto-reset
        env.step(pool[i % 8])
    compile_s = time.perf_counter() - t0
    i = [0]

    def one():
        env.step(pool[i[0] % 8])
        i[0] += 1

    calls, secs = _timed(one, SECONDS)
    adapter = calls * num_envs / secs

    # The jitted vmapped step alone, arrays kept on the device.
    state = env._state
    actions = {a: jax.numpy.asarray(v) for a, v in pool[0].items()}
    step = env._step_fn
    out = step(state, actions)
    jax.block_until_ready(out)
    holder = [state]

    def raw():
        _, holder[0], rew = step(holder[0], actions)
        jax.block_until_ready(rew)

    raw_calls, raw_secs = _timed(raw, SECONDS)
    return {"B": num_envs, "adapter_env_steps_per_s": round(adapter),
            "jit_only_env_steps_per_s": round(raw_calls * num_envs / raw_secs),
            "adapter_ms_per_call": round(1000 * secs / calls, 3), "compile_s": round(compile_s, 2)}


def bench_mpe2():
    from rllib_maddpg.envs import make_mpe_env

    env = make_mpe_env(SCENARIO)
    rng = np.random.default_rng(0)
    pool = [{a: rng.uniform(0, 1, env.action_spaces[a].shape).astype(np.float32)
             for a in env.possible_agents} for _ in range(8)]
    env.reset(seed=0)
    state = {"t": 0}

    def one():
        _, _, _, truncs, _ = env.step(pool[state["t"] % 8])
        state["t"] += 1
        if truncs["__all__"]:
            env.reset()

    calls, secs = _timed(one, SECONDS)
    return {"env_steps_per_s": round(calls / secs), "ms_per_step": round(1000 * secs / calls, 4)}


def bench_vmas(num_envs):
    """VMAS's simple_spread port through the plugin's adapter (envs/vmas_env.py), as the
    sampler calls it: numpy in and out, ended copies restarted (its own dynamics: not
    mpe2's, so a rate only)."""
    import torch

    from rllib_maddpg.envs.vmas_env import VmasBatched

    torch.set_num_threads(1)
    env = VmasBatched(SCENARIO, num_envs, {"max_steps": 25}, seed=0)
    rng = np.random.default_rng(0)
    pool = [{a: rng.uniform(-1, 1, (num_envs, 2)).astype(np.float32) for a in env.possible_agents}
            for _ in range(8)]
    env.reset(seed=0)
    i = [0]

    def one():
        env.step(pool[i[0] % 8])
        i[0] += 1

    one()
    calls, secs = _timed(one, SECONDS)
    return {"B": num_envs, "adapter_env_steps_per_s": round(calls * num_envs / secs),
            "adapter_ms_per_call": round(1000 * secs / calls, 3)}


def main_vmas():
    import vmas

    load_before = os.getloadavg()
    mpe2 = bench_mpe2()
    adapter = [bench_vmas(b) for b in (1, 64, 512)]
    print(json.dumps({
        "scenario": SCENARIO, "seconds_per_figure": SECONDS, "mpe2_plugin_env": mpe2, "vmas_adapter": adapter,
        "vmas": vmas.__version__, "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()], "python": platform.python_version(),
    }))


def main():
    if "--vmas" in sys.argv[1:]:
        return main_vmas()
    import jax
    import jaxmarl

    load_before = os.getloadavg()
    mpe2 = bench_mpe2()
    adapter = [bench_adapter(b) for b in (1, 64, 512)]
    load_after = os.getloadavg()
    print(json.dumps({
        "scenario": SCENARIO, "seconds_per_figure": SECONDS,
        "mpe2_plugin_env": mpe2, "jaxmarl_adapter": adapter,
        "speedup_vs_mpe2": {str(r["B"]): round(r["adapter_env_steps_per_s"] / mpe2["env_steps_per_s"], 2)
                            for r in adapter},
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in load_after],
        "threads": {"OMP_NUM_THREADS": os.environ["OMP_NUM_THREADS"],
                    "XLA_FLAGS": os.environ["XLA_FLAGS"]},
        "cpu_count": os.cpu_count(), "jax": jax.__version__,
        "jaxmarl": getattr(jaxmarl, "__version__", "0.2.0"), "python": platform.python_version(),
    }))


if __name__ == "__main__":
    main()
