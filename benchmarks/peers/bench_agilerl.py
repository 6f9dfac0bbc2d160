"""AgileRL MADDPG on mpe2 simple_spread_v3 / simple_adversary_v3 (continuous actions, 25-step episodes).

Adapted from the peer harness /work/shared/benchmarks/peers/bench_agilerl.py (kept: its set-up,
hyperparameters, training loop and evaluation; added: a timed window after learning starts, a
time-to-threshold mode, per-agent training returns, and one JSON line last on stdout). Run it with
the interpreter of AgileRL's own venv (benchmarks/peers/setup_agilerl.sh), not the project's.

Single process: one mpe2 parallel_env wrapped in agilerl.vector.PzDummyVecEnv (no subprocesses),
population of 1, no evolutionary HPO. Hyperparameters = INIT_HP / NET_CONFIG of AgileRL's
configs/training/multi_agent/maddpg.yaml (batch 64, lr_actor 1e-4, lr_critic 1e-3, gamma 0.95,
tau 1e-3, memory 100k, learn_step 16, OU noise 0.1/theta 0.15/dt 0.01, encoder [64] -> latent 64,
head [64, 64]). The loop mirrors agilerl.training.train_multi_agent_off_policy (one learn() call per
`learn_step` joint env steps, learning starts once len(memory) >= batch_size).

Action space: mpe2 with continuous_actions=True gives every agent Box(0, 1, (5,)) (dim_c = 0 in
these two scenarios); AgileRL's DeterministicActor ends in Tanh, adds OU noise clipped to [-1, 1]
(what its critic and replay buffer see) and rescales linearly to [0, 1] for the env.

Usage:
  python bench_agilerl.py --env simple_spread_v3 --steps 20000 --seed 0 --threads 1
      throughput: untimed steps until learning starts plus --warmup steps, then --steps timed
      env steps; prints env_steps_per_s of that window (and of the whole run).
  python bench_agilerl.py --env simple_adversary_v3 --threshold -15 --threshold-agents adversary_0 \
      --budget 300000 --threads 1
      time to threshold: trains until the mean over the last --window (100) training episodes of
      the summed return of --threshold-agents (default: all agents) first reaches --threshold, or
      until --budget env steps; records the env steps and wall-clock seconds of that first crossing.
  [--eval-episodes 100] [--json out.json]
Counts: 1 env step = 1 joint parallel_env.step (all agents). 1 update = 1 MADDPG.learn() call
(critic+actor step for every agent/group + soft target updates).
Eval: deterministic actor (no noise), fresh episodes, return = sum over the 25 steps,
reported per agent, summed over all agents, and per team (adversary_* vs agent_*).
The last line on stdout is one JSON object with all results.
"""
import argparse
import collections
import json
import os
import sys
import time

import numpy as np
import torch

ENV_KWARGS = {
    "simple_spread_v3": dict(N=3, max_cycles=25, continuous_actions=True),
    "simple_adversary_v3": dict(N=2, max_cycles=25, continuous_actions=True),
}


def env_name(name):
    """simple_spread / simple_spread_v3 -> simple_spread_v3 (the project's names work too)."""
    name = name.removeprefix("mpe/")
    return name if name.endswith("_v3") else f"{name}_v3"


def make_env(name):
    from mpe2 import simple_adversary_v3, simple_spread_v3

    if name == "simple_spread_v3":
        return simple_spread_v3.parallel_env(**ENV_KWARGS[name])
    if name == "simple_adversary_v3":
        return simple_adversary_v3.parallel_env(**ENV_KWARGS[name])
    raise ValueError(f"{name}: only simple_spread_v3 and simple_adversary_v3 are set up here")


def evaluate(agent, name, episodes, seed):
    env = make_env(name)
    agent.set_training_mode(False)
    totals = []
    for ep in range(episodes):
        obs, info = env.reset(seed=seed + 10_000 + ep)
        ret = {a: 0.0 for a in env.possible_agents}
        while env.agents:
            bobs = {a: np.expand_dims(o, 0) for a, o in obs.items()}
            act, _ = agent.get_action(obs=bobs, infos=None)
            obs, rew, term, trunc, info = env.step({a: act[a][0] for a in env.agents})
            for a, r in rew.items():
                ret[a] += r
        totals.append(ret)
    agent.set_training_mode(True)
    agents = env.possible_agents
    per_agent = {a: float(np.mean([t[a] for t in totals])) for a in agents}
    summed = [sum(t.values()) for t in totals]
    teams = {}
    for team in ("adversary", "agent"):
        members = [a for a in agents if a.startswith(team)]
        if members:
            teams[team] = float(np.mean([sum(t[a] for a in members) for t in totals]))
    return {
        "eval_episodes": episodes,
        "return_sum_mean": float(np.mean(summed)),
        "return_sum_std": float(np.std(summed)),
        "return_per_agent": per_agent,
        "return_per_team": teams,
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--env", default="simple_spread_v3")
    p.add_argument("--steps", type=int, default=20_000,
                   help="throughput mode: timed env steps after learning starts + --warmup")
    p.add_argument("--warmup", type=int, default=1_000,
                   help="throughput mode: untimed env steps after learning starts, before the window")
    p.add_argument("--threshold", type=float, default=None,
                   help="time-to-threshold mode: stop once the smoothed return reaches this")
    p.add_argument("--threshold-agents", nargs="+", default=None,
                   help="agents whose returns are summed for the threshold (default: all)")
    p.add_argument("--window", type=int, default=100, help="episodes in the smoothed return")
    p.add_argument("--budget", type=int, default=300_000, help="time-to-threshold mode: max env steps")
    p.add_argument("--max-seconds", type=float, default=None, help="stop training after this wall time")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    p.add_argument("--progress-every", type=int, default=0,
                   help="print a progress line to stderr every this many env steps (0: never)")
    p.add_argument("--eval-episodes", type=int, default=100)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    args.env = env_name(args.env)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)

    import agilerl  # noqa: F401
    from importlib.metadata import version
    from agilerl.algorithms import MADDPG
    from agilerl.components.data import MultiAgentTransition, transition_to_tensordict
    from agilerl.components.replay_buffer import ReplayBuffer
    from agilerl.vector import PzDummyVecEnv

    HP = dict(BATCH_SIZE=64, LR_ACTOR=1e-4, LR_CRITIC=1e-3, GAMMA=0.95, MEMORY_SIZE=100_000,
              LEARN_STEP=16, TAU=1e-3, O_U_NOISE=True, EXPL_NOISE=0.1, MEAN_NOISE=0.0,
              THETA=0.15, DT=0.01)
    NET_CONFIG = {"latent_dim": 64, "encoder_config": {"hidden_size": [64]},
                  "head_config": {"hidden_size": [64, 64], "activation": "ReLU"}}

    setup_start = time.perf_counter()
    raw = make_env(args.env)
    env = PzDummyVecEnv(raw)
    agent_ids = list(raw.possible_agents)
    threshold_agents = args.threshold_agents or agent_ids
    unknown = [a for a in threshold_agents if a not in agent_ids]
    if unknown:
        sys.exit(f"--threshold-agents {unknown}: {args.env} has agents {agent_ids}")
    agent = MADDPG(
        observation_spaces=[raw.observation_space(a) for a in agent_ids],
        action_spaces=[raw.action_space(a) for a in agent_ids],
        agent_ids=agent_ids,
        O_U_noise=HP["O_U_NOISE"], expl_noise=HP["EXPL_NOISE"], mean_noise=HP["MEAN_NOISE"],
        theta=HP["THETA"], dt=HP["DT"], net_config=NET_CONFIG, batch_size=HP["BATCH_SIZE"],
        lr_actor=HP["LR_ACTOR"], lr_critic=HP["LR_CRITIC"], learn_step=HP["LEARN_STEP"],
        gamma=HP["GAMMA"], tau=HP["TAU"], device="cpu",
    )
    memory = ReplayBuffer(max_size=HP["MEMORY_SIZE"], device="cpu")
    actor = agent.actors[agent.get_network_id(agent_ids[0])]
    action_space_info = {
        # AgileRL 2.58 shares one actor and one critic between agents of the same name
        # prefix (agent_0, agent_1, ... -> "agent"): parameter sharing, unlike the paper.
        "network_groups": {g: list(m) for g, m in agent.grouped_agents.items()},
        "env_action_space": str(raw.action_space(agent_ids[0])),
        "actor_output_activation": getattr(actor, "output_activation", None),
        "critic_sees": "actor output + OU noise, clipped to [-1, 1]; the env gets it rescaled to [0, 1]",
    }

    obs, info = env.reset(seed=args.seed)
    setup_s = time.perf_counter() - setup_start
    threshold_mode = args.threshold is not None
    total = args.budget if threshold_mode else None  # throughput mode: decided once learning starts
    ep_return = np.zeros(len(agent_ids))
    train_returns = []  # per finished episode: returns per agent (in agent_ids order)
    recent = collections.deque(maxlen=args.window)  # smoothed quantity of the last episodes
    reached = None
    learn_start_step = None
    window_start = window_t0 = window_c0 = window_updates0 = None
    updates = 0
    learn_time = 0.0
    load0 = os.getloadavg()[0]
    c0 = time.process_time()
    t0 = time.perf_counter()
    step = 0
    while total is None or step < total:
        action, raw_action = agent.get_action(obs=obs, infos=info)
        next_obs, reward, term, trunc, info = env.step(action)
        ep_return += [float(np.nan_to_num(np.asarray(reward[a]).ravel()[0])) for a in agent_ids]
        tr = transition_to_tensordict(MultiAgentTransition(
            obs=obs, action=raw_action, reward=reward, next_obs=next_obs, done=term))
        tr.batch_size = torch.Size([1])
        memory.add(tr)
        if step % agent.learn_step == 0 and len(memory) >= agent.batch_size:
            tl = time.perf_counter()
            agent.learn(memory.sample(agent.batch_size))
            learn_time += time.perf_counter() - tl
            updates += 1
            if learn_start_step is None:
                learn_start_step = step
                if not threshold_mode:
                    total = step + 1 + args.warmup + args.steps
        obs = next_obs
        step += 1
        if not threshold_mode and learn_start_step is not None and step == learn_start_step + 1 + args.warmup:
            window_start, window_t0, window_c0, window_updates0 = (
                step, time.perf_counter(), time.process_time(), updates)
        done = all(bool(np.asarray(term[a]).ravel()[0]) or bool(np.asarray(trunc[a]).ravel()[0])
                   for a in agent_ids)
        if done:  # PzDummyVecEnv resets the env itself
            train_returns.append(ep_return.copy())
            recent.append(sum(ep_return[agent_ids.index(a)] for a in threshold_agents))
            ep_return[:] = 0
            agent.reset_action_noise([0])
            if (threshold_mode and reached is None and len(recent) == args.window
                    and np.mean(recent) >= args.threshold):
                reached = {"env_steps": step, "seconds": time.perf_counter() - t0,
                           "episodes": len(train_returns), "smoothed_return": float(np.mean(recent))}
                break
        if args.progress_every and step % args.progress_every == 0:
            now = time.perf_counter() - t0
            print(f"agilerl: env steps {step:>9,} | {step / now:6.0f} steps/s | smoothed return of "
                  f"{'+'.join(threshold_agents)} (last {len(recent)} episodes) "
                  f"{np.mean(recent) if recent else float('nan'):8.2f} | {now:7.1f} s",
                  file=sys.stderr, flush=True)
        if args.max_seconds is not None and time.perf_counter() - t0 > args.max_seconds:
            break
    t_end, c_end = time.perf_counter(), time.process_time()
    wall, cpu = t_end - t0, c_end - c0
    load1 = os.getloadavg()[0]

    def smoothed(agents):
        idx = [agent_ids.index(a) for a in agents]
        last = train_returns[-args.window:]
        return float(np.mean([r[idx].sum() for r in last])) if last else None

    res = {
        "peer": f"agilerl {version('agilerl')}",
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "env": args.env, "env_kwargs": ENV_KWARGS[args.env], "seed": args.seed,
        "mode": "threshold" if threshold_mode else "throughput",
        "hyperparameters": HP, "net_config": NET_CONFIG, **action_space_info,
        "setup_s": setup_s, "env_steps": step, "learning_starts_at_step": learn_start_step,
        "train_wall_s": wall, "train_cpu_s": cpu, "cpu_util": cpu / wall,
        "loadavg1_start_end": [load0, load1],
        "env_steps_per_cpu_s": step / cpu, "run_env_steps_per_s": step / wall,
        "updates": updates, "updates_per_s_wall": updates / wall,
        "updates_per_s_learn_only": updates / learn_time if learn_time else None,
        "learn_time_frac": learn_time / wall,
        "episodes": len(train_returns),
        "train_return_sum_last100": smoothed(agent_ids),
        "train_return_per_agent_last100": {a: smoothed([a]) for a in agent_ids},
    }
    if window_start is not None:
        seconds = t_end - window_t0
        res.update({
            "window_env_steps": step - window_start, "window_s": seconds,
            "env_steps_per_s": (step - window_start) / seconds,
            "window_updates_per_s": (updates - window_updates0) / seconds,
            "window_cpu_util": (c_end - window_c0) / seconds,
        })
    else:
        res["env_steps_per_s"] = step / wall
    if threshold_mode:
        res.update({
            "threshold": args.threshold, "threshold_agents": threshold_agents,
            "smoothing_episodes": args.window, "budget": args.budget,
            "reached": reached is not None, "reached_at": reached,
            "final_smoothed_return": smoothed(threshold_agents),
        })
    if args.eval_episodes:
        te = time.perf_counter()
        res.update(evaluate(agent, args.env, args.eval_episodes, args.seed))
        res["eval_wall_s"] = time.perf_counter() - te
    print(json.dumps(res), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
