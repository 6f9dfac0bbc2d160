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
Prints one JSON line per (N, threads), and with `--profile` one per
(N, path) with the self CPU time per round by op (1 thread).
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

import gymnasium as gym
import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))

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


def time_paths(paths, batch, reps, rounds):
    """Rounds/s of each path: `rounds` rounds per timing, paths interleaved and rotated, `reps` times."""
    names = list(paths)
    samples = {name: [] for name in names}
    for rep in range(reps):
        order = names[rep % len(names):] + names[:rep % len(names)]
        for name in order:
            start = time.perf_counter()
            for _ in range(rounds):
                paths[name](batch)
            samples[name].append(rounds / (time.perf_counter() - start))
    return {name: statistics.median(values) for name, values in samples.items()}, samples


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
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--reps", type=int, default=7, help="timings per path (median taken)")
    parser.add_argument("--seconds", type=float, default=0.5,
                        help="about how long one timing of the loop path lasts (sets rounds per timing)")
    parser.add_argument("--check-rounds", type=int, default=3)
    parser.add_argument("--atol", type=float, default=1e-9,
                        help="max abs weight difference allowed in float64 (asserted)")
    parser.add_argument("--paths", nargs="+", default=["loop", "shared", "full", "vmap"])
    parser.add_argument("--profile", action="store_true", help="also print each path's top ops (1 thread)")
    parser.add_argument("--profile-rounds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    for n in args.agents:
        agents = simple_spread_agents(n)
        batch = random_batch(agents, args.batch_size, args.seed)
        torch.set_num_threads(1)
        diffs = {}
        for p in args.paths:
            if p != "loop":
                diffs[p] = {name: check_equal(agents, batch, args.check_rounds, p, args.seed, dtype)
                            for name, dtype in (("float64", torch.float64), ("float32", torch.float32))}
                assert diffs[p]["float64"][0] <= args.atol, (p, diffs[p])
        noise = loop_thread_noise(agents, batch, args.check_rounds, args.seed)
        # Timing state: fresh nets, trained on for the whole run.
        learners = build(agents, args.seed)
        head = learners[0].action_head
        fns = {"loop": lambda b, ls=learners: loop_round(ls, b)}
        for p in args.paths:
            if p != "loop":
                fns[p] = lambda b, m=BatchedMADDPG([l.model for l in learners], head, CONFIG, p): \
                    batched_round(m, b)
        fns = {p: fns[p] for p in args.paths}
        for threads in args.threads:
            torch.set_num_threads(threads)
            for fn in fns.values():  # warm up; also sizes a timing
                fn(batch)
            start = time.perf_counter()
            fns[args.paths[0]](batch)
            rounds = max(1, int(args.seconds / (time.perf_counter() - start)))
            load_before = os.getloadavg()
            medians, samples = time_paths(fns, batch, args.reps, rounds)
            line = {
                "n_agents": n, "obs_dim": agents[0].obs_dim, "action_dim": agents[0].action_dim,
                "critic_in_dim": sum(a.obs_dim + a.action_dim for a in agents),
                "batch_size": args.batch_size, "torch_threads": torch.get_num_threads(),
                "reps": args.reps, "rounds_per_timing": rounds,
            }
            for p in args.paths:
                line[f"{p}_rounds_per_s"] = round(medians[p], 2)
            for p in args.paths:
                if p != "loop" and "loop" in medians:
                    line[f"{p}_over_loop"] = round(medians[p] / medians["loop"], 3)
            line["spread"] = {p: [round(min(v), 2), round(max(v), 2)] for p, v in samples.items()}
            line["check_rounds"] = args.check_rounds
            line["max_abs_diff"] = {p: {dt: d[dt][0] for dt in d} for p, d in diffs.items()}
            line["float32_frac_weights_off_by_1e-4"] = {p: d["float32"][1] for p, d in diffs.items()}
            line["float32_loop_2_vs_1_threads"] = {"max_abs_diff": noise[0], "frac_off_by_1e-4": noise[1]}
            line["loadavg_before"] = [round(x, 2) for x in load_before]
            line["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
            line["torch"] = torch.__version__
            line["cpu"] = platform.processor() or platform.machine()
            line["os_cpus"] = os.cpu_count()
            print(json.dumps(line), flush=True)
        if args.profile:
            torch.set_num_threads(1)
            for p, fn in fns.items():
                print(json.dumps({"n_agents": n, "profile": p, "torch_threads": 1,
                                  "loadavg": [round(x, 2) for x in os.getloadavg()],
                                  **profile_rounds(fn, batch, args.profile_rounds, 8)}), flush=True)
        for learner in learners:  # the runs trained on random data: still finite?
            assert all(torch.isfinite(x).all() for x in learner.model.parameters())


if __name__ == "__main__":
    main()
