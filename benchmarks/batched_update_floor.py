"""Does updating all N agents at once beat today's per-agent loop on CPU? (issue 23, item 1)

    PYTHONPATH=. python benchmarks/batched_update_floor.py --agents 3 6 12 --threads 1 2

Plain torch, no Ray. N agents at simple_spread's shapes (mpe2, continuous
actions: o_i has 6N entries, a_i 5 on the simplex, the critic reads all N
observations and actions), the paper's schedule and nets (minibatch 1024,
2 x 64 ReLU MLPs, Adam 1e-2, gamma 0.95, tau 0.01, per-variable gradient
clipping at 0.5, Gumbel-Softmax heads). One update round = the target
actions a'_j of every agent, then every agent's critic step, actor step and
soft update, on one random joint minibatch (the same rows for every path).

Paths, timed interleaved in one process (loop, shared, full, vmap, then rotated,
`--reps` times; medians), so a busy machine slows them alike:
  loop     today's code: core.update.update_agent on N plain-torch learners
           (built as tests/unit/test_core.py builds them), after
           core.joint.attach_target_actions;
  shared   core.batched.BatchedMADDPG: the N agents' weights stacked [N, ...];
           the critics' first layers as one matmul on the shared joint input,
           the actor loss's a_i -> mu_i(o_i) as a rank-A correction;
  full     the same, but each agent's actor-loss critic input built in full
           ([N, B, D], as update.py builds it);
  vmap     the same math with torch.func.vmap over functional_call (the
           stack_module_state route) instead of hand-written bmm, full inputs.

Before timing, each batched path runs `--check-rounds` rounds from the loop's
initial weights, with the same Gumbel noise (same seed; one draw of [N, B, A]
gives the same numbers as N draws of [B, A]), in float64 and in float32; in
float64 every agent's actor, critic and targets must equal the loop's to
`--atol` (asserted). float32 is reported, not asserted: Adam's first steps
are about lr * sign(g), so a weight whose gradient sums to about 0 over the
minibatch moves by +-lr on rounding noise alone, and the next rounds carry
that on (N = 12: weights 2 lr = 0.02 apart after one round). For scale, the
same is printed for today's loop at 2 threads against itself at 1 thread.
Prints one JSON line per (N, batch size, device, threads), and with `--profile`
one per (N, path) with the self CPU time per round by op (1 thread, CPU only).

`--device cpu cuda` times every path on each device (`--batch-size` also takes
several sizes). The equality checks always run on the CPU: CUDA draws other
random numbers for one [N, B, A] draw than for N [B, A] draws, so the noise
would differ. On CUDA the timed sections are fenced with torch.cuda.synchronize(),
`--threads` applies to the CPU only (CUDA timings use its first value), and two
variants of a batched mode can be named as paths:
  <mode>_graph    one update round captured as a CUDA graph (Adam with
                  capturable=True, the minibatch copied into static tensors
                  each round, then replayed); if the capture fails, it is retried
                  under `with torch.device("cuda")` (batched.py makes some small
                  tensors without a device) and both outcomes are reported;
  <mode>_compile  update_round under torch.compile (default mode; the first call,
                  compilation included, is reported as compile_s).
Neither variant is checked against the loop (their random streams differ);
a path that fails on a device is reported under "errors" and left out of the
timings. Without Ray installed (the GPU machine's image), rllib_maddpg.core is
imported through a bare package module for rllib_maddpg (no Ray stubs; core/
needs only torch, numpy and gymnasium).

    python benchmarks/batched_update_floor.py --device cuda cpu --agents 3 6 12 \
        --batch-size 1024 8192 --threads 16 --paths loop shared full vmap shared_graph
"""

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import statistics
import sys
import time

import gymnasium as gym
import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.append(ROOT)


def import_core_without_ray() -> str:
    """How rllib_maddpg is imported: "package" (its __init__, which imports Ray), or, where
    Ray is missing, "bare package module (no ray)": a module for rllib_maddpg made from its
    spec but never executed, whose __path__ is the rllib_maddpg folder, so that
    rllib_maddpg.core's modules import (they need only torch, numpy and gymnasium)."""
    if "rllib_maddpg" in sys.modules or importlib.util.find_spec("ray") is not None:
        return "package"
    spec = importlib.util.find_spec("rllib_maddpg")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"rllib_maddpg not found on sys.path (tried {ROOT})")
    sys.modules["rllib_maddpg"] = importlib.util.module_from_spec(spec)
    return "bare package module (no ray)"


RLLIB_MADDPG_IMPORT = import_core_without_ray()

from plain_learner import PlainLearner  # noqa: E402  (test support: agent i as plain torch)
from rllib_maddpg.core import joint as jb  # noqa: E402
from rllib_maddpg.core import update  # noqa: E402
from rllib_maddpg.core.batched import BatchedMADDPG  # noqa: E402

# The paper's / original code's values (MADDPGConfig's defaults).
CONFIG = {
    "actor_lr": 1e-2, "critic_lr": 1e-2, "gamma": 0.95, "tau": 0.01,
    "grad_norm_clipping": 0.5, "grad_norm_clipping_scope": "variable",
    "actor_regularization": 1e-3, "actor_update_delay": 1, "policy_inference_entropy": 1e-3,
    "actor_hiddens": [64, 64], "critic_hiddens": [64, 64],
    "actor_hidden_activation": "relu", "critic_hidden_activation": "relu",
    "gumbel_softmax_temperature": 1.0, "gumbel_softmax_hard": False, "gumbel_target_noise": True,
    "simplex_box_actions": True, "target_action_noise": 0.0, "target_action_noise_clip": 0.5,
}
ACTION_SPACE = gym.spaces.Box(0.0, 1.0, (5,), np.float32)  # simple_spread, continuous_actions=True


def simple_spread_agents(n):
    """AgentSpecs of simple_spread with n agents, read from mpe2 when installed."""
    try:
        from mpe2 import simple_spread_v3
        env = simple_spread_v3.parallel_env(N=n, continuous_actions=True)
        obs_dim = int(env.observation_space(env.possible_agents[0]).shape[0])
        action_dim = int(env.action_space(env.possible_agents[0]).shape[0])
    except ImportError:  # mpe2's sizes: own vel, pos (4), N landmarks, N-1 others, N-1 comms (2 each)
        obs_dim, action_dim = 4 + 2 * n + 2 * (n - 1) + 2 * (n - 1), 5
    return [jb.AgentSpec(f"agent_{k}", f"agent_{k}", obs_dim, action_dim, simplex_segments=(action_dim,))
            for k in range(n)]


def random_batch(agents, batch_size, seed):
    """A joint minibatch of random rows (actions on the simplex, as simple_spread's)."""
    rng = np.random.default_rng(seed)
    batch = {}
    for name, (shape, dtype) in jb.replay_columns(agents).items():
        values = rng.normal(size=(batch_size,) + shape).astype(dtype)
        if name.startswith("joint_actions"):
            values = np.exp(values) / np.exp(values).sum(-1, keepdims=True)
        if name.startswith("joint_terminateds"):
            values = np.zeros_like(values)  # simple_spread only truncates
        if name.startswith(("joint_alive", "joint_next_alive")):
            values = np.ones_like(values)
        batch[name] = torch.from_numpy(values.astype(dtype))
    return batch


def loop_round(learners, batch):
    """Today's update round: a'_j for every agent, then update_agent for each in turn."""
    batch = dict(batch)
    jb.attach_target_actions(batch, learners)
    return [update.update_agent(learner, batch) for learner in learners]


def batched_round(batched, batch):
    return {name: value.tolist() for name, value in batched.update_round(batch).items()}


def build(agents, seed):
    torch.manual_seed(seed)
    return [PlainLearner(agents, k, CONFIG, ACTION_SPACE, agents[k].simplex_segments) for k in range(len(agents))]


def max_abs_diff(learners, batched):
    """max |loop - batched| over every agent's actor, critic and their targets."""
    worst = 0.0
    for name in ("actor", "critic", "target_actor", "target_critic"):
        stacks = getattr(batched, name)
        for k, learner in enumerate(learners):
            linears = [m for m in getattr(learner.model, name) if isinstance(m, torch.nn.Linear)]
            flat = [p for lin in linears for p in (lin.weight, lin.bias)]
            for p, s in zip(flat, stacks):
                worst = max(worst, float((p.detach() - s.detach()[k]).abs().max()))
    return worst


def check_equal(agents, batch, rounds, mode, seed, dtype):
    """Runs `rounds` rounds of the loop and of the batched path from the same weights
    and noise, in `dtype`; returns the max abs weight difference and the fraction of
    weights that differ by more than 1e-4."""
    torch.set_default_dtype(dtype)
    try:
        batch = {k: v.to(dtype) if v.is_floating_point() else v for k, v in batch.items()}
        learners = build(agents, seed)
        batched = BatchedMADDPG([l.model for l in learners], learners[0].action_head, CONFIG, mode)
        assert max_abs_diff(learners, batched) == 0.0
        for r in range(rounds):
            torch.manual_seed(1000 + r)
            loop_round(learners, batch)
            torch.manual_seed(1000 + r)
            batched_round(batched, batch)
        return max_abs_diff(learners, batched), fraction_differing(learners, batched, 1e-4)
    finally:
        torch.set_default_dtype(torch.float32)


def loop_thread_noise(agents, batch, rounds, seed):
    """The float32 noise floor: today's loop at 2 threads against itself at 1 thread
    (another matmul blocking, the same math): max abs diff and fraction off by > 1e-4."""
    one, two = build(agents, seed), build(agents, seed)
    threads = torch.get_num_threads()
    try:
        for r in range(rounds):
            for learners, t in ((one, 1), (two, 2)):
                torch.set_num_threads(t)
                torch.manual_seed(1000 + r)
                loop_round(learners, batch)
    finally:
        torch.set_num_threads(threads)
    view = BatchedMADDPG([l.model for l in two], two[0].action_head, CONFIG)
    return max_abs_diff(one, view), fraction_differing(one, view, 1e-4)


def fraction_differing(learners, batched, threshold):
    differing = total = 0
    for name in ("actor", "critic", "target_actor", "target_critic"):
        stacks = getattr(batched, name)
        for k, learner in enumerate(learners):
            linears = [m for m in getattr(learner.model, name) if isinstance(m, torch.nn.Linear)]
            for p, s in zip([p for lin in linears for p in (lin.weight, lin.bias)], stacks):
                d = (p.detach() - s.detach()[k]).abs()
                differing += int((d > threshold).sum())
                total += d.numel()
    return differing / total


def sync(device):
    """Waits for the device's queued work (CUDA runs asynchronously); nothing on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_paths(paths, batch, reps, rounds, device=None):
    """Rounds/s of each path: `rounds` rounds per timing, paths interleaved and rotated, `reps` times."""
    device = device or torch.device("cpu")
    names = list(paths)
    samples = {name: [] for name in names}
    for rep in range(reps):
        order = names[rep % len(names):] + names[:rep % len(names)]
        for name in order:
            sync(device)
            start = time.perf_counter()
            for _ in range(rounds):
                paths[name](batch)
            sync(device)
            samples[name].append(rounds / (time.perf_counter() - start))
    return {name: statistics.median(values) for name, values in samples.items()}, samples


def capturable_optimizers(model):
    """Adam with capturable=True (its step counts on the device), as CUDA graphs need."""
    for name, params in (("actor", model.actor), ("critic", model.critic)):
        lr = model.optimizers[name].param_groups[0]["lr"]
        model.optimizers[name] = torch.optim.Adam(params, lr=lr, capturable=True)


def graphed_round(model, batch, default_device):
    """One update round of `model` (a BatchedMADDPG on CUDA) captured as a CUDA graph.
    Returns fn(batch): copies the batch into the graph's static inputs, replays, and
    returns the stats as lists (one sync per round, as the eager paths)."""
    capturable_optimizers(model)
    static = {k: v.clone() for k, v in batch.items()}
    device_ctx = torch.device(batch[next(iter(batch))].device) if default_device else contextlib.nullcontext()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side), device_ctx:  # warm up (Adam's state, cuBLAS handles) off the capture
        for _ in range(3):
            model.update_round(static)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph), device_ctx:
        stats = model.update_round(static)

    def run(b):
        for k, v in static.items():
            v.copy_(b[k])
        graph.replay()
        return {name: value.tolist() for name, value in stats.items()}

    return run


def compiled_round(model):
    """update_round under torch.compile (default mode; graph breaks at backward)."""
    compiled = torch.compile(model.update_round)
    return lambda b: {name: value.tolist() for name, value in compiled(b).items()}


def short_error(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text if len(text) <= 600 else text[:600] + "..."


def make_paths(path_names, learners, batch, device):
    """fn(batch) per path on `device`, built from the learners' current weights and warmed
    up once. Returns (fns, errors, notes): a path that fails to build or to run is left
    out, its error kept (per mode: batched.py's own device bugs show up here)."""
    head = learners[0].action_head
    fns, errors, notes = {}, {}, {}
    for p in path_names:
        base, _, variant = p.partition("_")
        try:
            if p == "loop":
                fn = lambda b, ls=learners: loop_round(ls, b)
            elif variant == "":
                model = BatchedMADDPG([l.model for l in learners], head, CONFIG, base)
                fn = lambda b, m=model: batched_round(m, b)
            elif variant == "graph":
                if device.type != "cuda":
                    raise RuntimeError("CUDA graphs need device cuda")
                try:
                    model = BatchedMADDPG([l.model for l in learners], head, CONFIG, base)
                    fn = graphed_round(model, batch, default_device=False)
                    notes[p] = {"captured": "as is"}
                except Exception as exc:  # noqa: BLE001  (reported, then retried)
                    first = short_error(exc)
                    torch.cuda.synchronize(device)
                    model = BatchedMADDPG([l.model for l in learners], head, CONFIG, base)
                    fn = graphed_round(model, batch, default_device=True)
                    notes[p] = {"captured": 'under torch.device("cuda") (tensors made without a device '
                                            'land on the GPU)', "error_as_is": first}
            elif variant == "compile":
                model = BatchedMADDPG([l.model for l in learners], head, CONFIG, base)
                fn = compiled_round(model)
                sync(device)
                start = time.perf_counter()
                fn(batch)  # compiles
                sync(device)
                notes[p] = {"compile_s": round(time.perf_counter() - start, 2)}
            else:
                raise ValueError(f"unknown path {p!r}")
            fn(batch)
            sync(device)
            fns[p] = fn
        except Exception as exc:  # noqa: BLE001  (reported per path; the others go on)
            errors[p] = short_error(exc)
            if device.type == "cuda":
                try:
                    torch.cuda.synchronize(device)
                except Exception as sync_exc:  # noqa: BLE001
                    errors[p] += f" (then synchronize: {short_error(sync_exc)})"
    return fns, errors, notes


def device_name(device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()


def profile_rounds(fn, batch, rounds, top):
    """Self CPU time per round by op, over `rounds` rounds (a busy machine's preemptions
    land in whichever op was running: read the matmul share, not single ops)."""
    from torch.profiler import ProfilerActivity, profile
    fn(batch)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(rounds):
            fn(batch)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    per_round = lambda us: round(us / 1e3 / rounds, 3)
    total = sum(e.self_cpu_time_total for e in events)
    matmul = sum(e.self_cpu_time_total for e in events if e.key in MATMULS)
    return {"ms_per_round": per_round(total), "matmul_ms_per_round": per_round(matmul),
            "ops_per_round": round(sum(e.count for e in events) / rounds),
            "top_self_ms_per_round": [[e.key, per_round(e.self_cpu_time_total), e.count // rounds]
                                      for e in events[:top]]}


MATMULS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, nargs="+", default=[3, 6, 12])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="torch threads for the CPU timings (CUDA timings: the first value)")
    parser.add_argument("--batch-size", type=int, nargs="+", default=[1024])
    parser.add_argument("--device", nargs="+", choices=["cpu", "cuda"], default=["cpu"],
                        help="where to time the paths (the equality checks always run on the CPU)")
    parser.add_argument("--reps", type=int, default=7, help="timings per path (median taken)")
    parser.add_argument("--seconds", type=float, default=0.5,
                        help="about how long one timing of the first path lasts (sets rounds per timing)")
    parser.add_argument("--check-rounds", type=int, default=3, help="0: no equality checks")
    parser.add_argument("--atol", type=float, default=1e-9,
                        help="max abs weight difference allowed in float64 (asserted)")
    parser.add_argument("--paths", nargs="+", default=["loop", "shared", "full", "vmap"],
                        help="loop, shared, full, vmap; on cuda also <mode>_graph; <mode>_compile")
    parser.add_argument("--profile", action="store_true", help="also print each path's top ops (1 thread, CPU)")
    parser.add_argument("--profile-rounds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    devices = []
    for name in args.device:
        if name == "cuda" and not torch.cuda.is_available():
            print(json.dumps({"device": "cuda", "error": "torch.cuda.is_available() is False",
                              "torch": torch.__version__}), flush=True)
            continue
        devices.append(torch.device(name))
    checked_modes = [p for p in args.paths if p in ("shared", "full", "vmap")]
    for n in args.agents:
        agents = simple_spread_agents(n)
        for batch_size in args.batch_size:
            batch_cpu = random_batch(agents, batch_size, args.seed)
            torch.set_num_threads(1)
            diffs, noise = {}, None
            if args.check_rounds > 0:  # on the CPU, whatever the timing device
                for p in checked_modes:
                    diffs[p] = {name: check_equal(agents, batch_cpu, args.check_rounds, p, args.seed, dtype)
                                for name, dtype in (("float64", torch.float64), ("float32", torch.float32))}
                    assert diffs[p]["float64"][0] <= args.atol, (p, diffs[p])
                noise = loop_thread_noise(agents, batch_cpu, args.check_rounds, args.seed)
            for device in devices:
                # Timing state: fresh nets, trained on for the whole run.
                torch.set_num_threads(args.threads[0])
                learners = build(agents, args.seed)
                for learner in learners:
                    learner.model.to(device)  # in place (.data swapped): the optimizers keep their parameters
                    assert all(p.device.type == device.type for opt in learner.optimizers.values()
                               for g in opt.param_groups for p in g["params"]), "optimizer left on the CPU"
                batch = {k: v.to(device) for k, v in batch_cpu.items()}
                fns, errors, notes = make_paths(args.paths, learners, batch, device)
                for threads in (args.threads if device.type == "cpu" else args.threads[:1]):
                    torch.set_num_threads(threads)
                    line = {
                        "n_agents": n, "obs_dim": agents[0].obs_dim, "action_dim": agents[0].action_dim,
                        "critic_in_dim": sum(a.obs_dim + a.action_dim for a in agents),
                        "batch_size": batch_size, "device": device.type, "device_name": device_name(device),
                        "torch_threads": torch.get_num_threads(), "reps": args.reps,
                    }
                    medians, samples = {}, {}
                    if fns:
                        for fn in fns.values():  # warm up; also sizes a timing
                            fn(batch)
                        first = next(iter(fns))
                        sync(device)
                        start = time.perf_counter()
                        fns[first](batch)
                        sync(device)
                        rounds = max(1, int(args.seconds / (time.perf_counter() - start)))
                        line["rounds_per_timing"] = rounds
                        load_before = os.getloadavg()
                        medians, samples = time_paths(fns, batch, args.reps, rounds, device)
                        line["loadavg_before"] = [round(x, 2) for x in load_before]
                    for p in fns:
                        line[f"{p}_rounds_per_s"] = round(medians[p], 2)
                    for p in fns:
                        if p != "loop" and "loop" in medians:
                            line[f"{p}_over_loop"] = round(medians[p] / medians["loop"], 3)
                    line["spread"] = {p: [round(min(v), 2), round(max(v), 2)] for p, v in samples.items()}
                    line["errors"] = errors
                    line["variants"] = notes
                    line["check_rounds"] = args.check_rounds
                    if args.check_rounds > 0:
                        line["checks_on"] = "cpu"
                        line["max_abs_diff"] = {p: {dt: d[dt][0] for dt in d} for p, d in diffs.items()}
                        line["float32_frac_weights_off_by_1e-4"] = {p: d["float32"][1] for p, d in diffs.items()}
                        line["float32_loop_2_vs_1_threads"] = {"max_abs_diff": noise[0],
                                                               "frac_off_by_1e-4": noise[1]}
                    line["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
                    line["torch"] = torch.__version__
                    line["cuda"] = torch.version.cuda
                    line["cpu"] = platform.processor() or platform.machine()
                    line["os_cpus"] = os.cpu_count()
                    line["rllib_maddpg_import"] = RLLIB_MADDPG_IMPORT
                    print(json.dumps(line), flush=True)
                if args.profile and device.type == "cpu":
                    torch.set_num_threads(1)
                    for p, fn in fns.items():
                        print(json.dumps({"n_agents": n, "batch_size": batch_size, "profile": p,
                                          "torch_threads": 1, "loadavg": [round(x, 2) for x in os.getloadavg()],
                                          **profile_rounds(fn, batch, args.profile_rounds, 8)}), flush=True)
                for learner in learners:  # the runs trained on random data: still finite?
                    assert all(torch.isfinite(x).all() for x in learner.model.parameters())


if __name__ == "__main__":
    main()
