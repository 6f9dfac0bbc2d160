"""MADDPG on third-party envs: named settings, greedy learning curves, random baselines.

    python benchmarks/third_party.py --env multiwalker --setting default --seeds 0 --budget 50000
    python benchmarks/third_party.py --env multiwalker --setting shared_td3 --seeds 0 1 2 --budget 300000
    python benchmarks/third_party.py --table            # the table of every JSON in --out

One run = (env, setting, seed): MADDPG trains with the setting's config
overrides (SETTINGS below; "default" is the paper's) for `--budget` env steps
on one core (8 sub-envs on the driver, one torch thread). The greedy actors
(explore=False, decentralized, episodes seeded 10,000 + k, `--eval-episodes`
of them) are evaluated before training and every `--eval-every` env steps;
uniform random actions are played on the same seeds. Recorded per evaluation:
per-agent and summed episode returns (every episode), episode lengths, the
env steps and the training seconds so far, the mean L2 norm of the greedy
Box actions the env was given (`action_norm_mean`), and the policies'
learner stats (Q mean, target mean, losses) of the last update; per run: training env steps/s
(updates included, evaluations excluded). Each run is written to
`--out/<env>__<setting>__seed<k>.json` (plus a marl-eval-format copy,
`*.marl_eval.json`) when it ends; a rerun skips runs whose JSON exists, so the
command is resumable. With `--commit`, each JSON is committed to git as soon
as it is written.

Nothing here changes an env's rewards: env_config is the env's default unless
the ENVS entry says otherwise.
"""

import argparse
import copy
import json
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

# name -> (registered env, env_config, episodes per greedy evaluation default)
ENVS = {
    "multiwalker": ("user/multiwalker_v9", {}),
    "pursuit": ("user/pursuit_v5", {}),
    "waterworld": ("user/waterworld_v4", {}),
    "kaz": ("user/knights_archers_zombies_v11", {}),
    "cartpole": ("user/multi_agent_cartpole", {}),  # 2 agents (tests/user_envs.py)
    "pendulum": ("user/multi_agent_pendulum", {"num_agents": 2}),
    # RLlib's cooperative matrix game (Rashid et al. 2018, QMIX's two-step game), by class path.
    "two_step_game": ("ray.rllib.examples.envs.classes.multi_agent.two_step_game.TwoStepGame", {}),
}

# A setting: "training" (MADDPGConfig.training keys), "env_runners" overrides,
# and "share": True maps every agent to one policy ("shared").
SETTINGS = {
    "default": {"training": {}},  # the paper's: lr 1e-2, 1 update / 100 env steps, batch 1024
    # TD3-style locomotion practice, one policy per agent.
    "td3": {"training": {
        "actor_lr": 1e-3, "critic_lr": 1e-3, "tau": 0.005, "gamma": 0.99,
        "env_steps_per_update": 8, "train_batch_size": 256,
        "num_steps_sampled_before_learning_starts": 10_000,
        "exploration_noise_scale": 0.2, "actor_regularization": 0.0,
        "actor_hiddens": [256, 256], "critic_hiddens": [256, 256],
        "twin_critics": True, "target_action_noise": 0.2, "target_action_noise_clip": 0.5,
        "actor_update_delay": 2, "grad_norm_clipping": None}},
}
SETTINGS["shared_td3"] = {**SETTINGS["td3"], "share": True}
# Parameter-shared DDPG with a local critic Q(o_i, a_i) (the published "shared DDPG"
# baseline of Terry et al. 2020 is this, in RLlib 0.8), less exploration noise.
SETTINGS["shared_ddpg_local"] = {"share": True, "training": {
    **SETTINGS["td3"]["training"], "twin_critics": False, "target_action_noise": 0.0,
    "actor_update_delay": 1, "use_local_critic": True, "exploration_noise_scale": 0.1}}
# For Discrete actions (Gumbel-Softmax): the paper's actor regularization kept
# (suspected: with td3's 0 the logits grow until the greedy action is constant), lr 1e-3,
# gamma 0.99, one update per 8 env steps on 256 rows, one shared policy.
SETTINGS["shared_discrete"] = {"share": True, "training": {
    "actor_lr": 1e-3, "critic_lr": 1e-3, "tau": 0.01, "gamma": 0.99,
    "env_steps_per_update": 8, "train_batch_size": 256,
    "num_steps_sampled_before_learning_starts": 10_000, "actor_hiddens": [128, 128],
    "critic_hiddens": [128, 128]}}
# shared_ddpg_local's settings with MADDPG's centralized critic (no TD3 extras):
# isolates the critic's inputs from shared_td3_n01's twin critics, smoothing, delay.
SETTINGS["shared_maddpg_n01"] = {"share": True, "training": {
    **SETTINGS["shared_ddpg_local"]["training"], "use_local_critic": False}}
# shared_td3 with noise 0.1 (TD3's BipedalWalker value).
SETTINGS["shared_td3_n01"] = {"share": True, "training": {
    **SETTINGS["td3"]["training"], "exploration_noise_scale": 0.1}}
# shared_td3_n01 with 3-step critic targets (the n_step key): does a shorter path for the
# fall penalty let MADDPG's centralized critic learn where the one-step target did not?
SETTINGS["shared_td3_n01_nstep3"] = {"share": True, "training": {
    **SETTINGS["shared_td3_n01"]["training"], "n_step": 3}}
# shared_ddpg_local with the paper's actor regularization (1e-3 * mean(pre-tanh^2) in
# the actor loss) kept instead of td3's 0: on waterworld, shared_ddpg_local's actor
# saturated (every action at a corner of the box, |a| = sqrt(2)) by 25k env steps
# with an actor gradient of exactly 0 through tanh, so nothing could bring it back.
SETTINGS["shared_ddpg_local_reg"] = {"share": True, "training": {
    **SETTINGS["shared_ddpg_local"]["training"], "actor_regularization": 1e-3}}
SETTINGS["shared_ddpg"] = {"share": True, "training": {
    **SETTINGS["td3"]["training"], "twin_critics": False, "target_action_noise": 0.0,
    "actor_update_delay": 1}}


def make_env(env_name, env_config):
    from ray.rllib.env.env_context import EnvContext
    from rllib_maddpg import MADDPGConfig
    from rllib_maddpg.ray_compat import env_id_and_creator

    config = MADDPGConfig().environment(env_name, env_config=env_config)
    return env_id_and_creator(env_name, config)[1](EnvContext(env_config, worker_index=0))


def register_extra_envs():
    from ray.tune.registry import register_env

    def pendulum(env_config):
        from ray.rllib.examples.envs.classes.multi_agent import MultiAgentPendulum
        return MultiAgentPendulum({"num_agents": 2, **env_config})

    register_env("user/multi_agent_pendulum", pendulum)


def greedy(algo, env_name, env_config, episodes):
    """Per-episode, per-agent returns of the greedy actors on seeds 10,000 + k."""
    from rllib_maddpg.evaluation import run_algorithm_episodes

    env = make_env(env_name, env_config)
    norms, step = [], env.step

    def recording_step(actions):  # the L2 norm of every Box action the env is given
        for action in actions.values():
            if isinstance(action, np.ndarray) and action.dtype.kind == "f":
                norms.append(float(np.linalg.norm(action)))
        return step(actions)

    env.step = recording_step
    try:
        result = run_algorithm_episodes(algo, env, episodes, seed=10_000)
    finally:
        env.close()
    greedy.action_norm_mean = float(np.mean(norms)) if norms else None
    return [str(a) for a in result.agent_ids], result.returns, list(result.lengths)


def random_play(algo, env_name, env_config, episodes):
    """Per-episode, per-agent returns of uniform random actions on the same seeds."""
    from rllib_maddpg.envs import env_agent_ids

    env = make_env(env_name, env_config)
    # One copy of the space per agent (a shared policy's agents share one space
    # object), so the random actions do not depend on how policies are mapped.
    spaces = {a.agent_id: copy.deepcopy(algo.get_policy(a.policy_id).action_space) for a in algo.agents}
    try:
        agent_ids = env_agent_ids(env)
        returns, lengths = np.zeros((episodes, len(agent_ids))), []
        for episode in range(episodes):
            obs, _ = env.reset(seed=10_000 + episode)
            for k, a in enumerate(agent_ids):
                spaces[a].seed(10_000 + 1000 * episode + k)
            steps = 0
            while True:
                obs, rewards, terms, truncs, _ = env.step({a: spaces[a].sample() for a in obs})
                obs = {a: o for a, o in obs.items() if not (terms.get(a) or truncs.get(a))}
                steps += 1
                for k, a in enumerate(agent_ids):
                    returns[episode, k] += float(rewards.get(a, 0.0))
                if terms.get("__all__") or truncs.get("__all__"):
                    break
            lengths.append(steps)
    finally:
        env.close()
    return returns, lengths


def summary(agents, returns, lengths):
    return {"summed_return_mean": float(returns.sum(axis=1).mean()),
            "summed_returns": [float(x) for x in returns.sum(axis=1)],
            "per_agent_return_mean": {a: float(returns[:, k].mean()) for k, a in enumerate(agents)},
            "length_mean": float(np.mean(lengths))}


def build(env_key, setting, seed):
    from rllib_maddpg import MADDPGConfig

    env_name, env_config = ENVS[env_key]
    s = SETTINGS[setting]
    runners = {"num_env_runners": 0, "num_envs_per_env_runner": 8, "rollout_fragment_length": 25,
               **s.get("env_runners", {})}
    config = (
        MADDPGConfig()
        .environment(env_name, env_config=env_config)
        .env_runners(**runners)
        .training(**s["training"])
        .reporting(min_sample_timesteps_per_iteration=1000)
        .debugging(seed=seed)
    )
    if s.get("share"):
        config.multi_agent(policies={"shared"}, policy_mapping_fn=lambda agent_id, *a, **k: "shared")
    return config.build_algo()


def run(env_key, setting, seed, budget, eval_every, episodes):
    import user_envs

    env_name, env_config = ENVS[env_key]
    reason = user_envs.missing(env_name)
    if reason:
        return {"env": env_key, "setting": setting, "seed": seed, "skipped": reason}
    start = time.time()
    algo = build(env_key, setting, seed)
    try:
        agents, returns, lengths = greedy(algo, env_name, env_config, episodes)
        rnd_returns, rnd_lengths = random_play(algo, env_name, env_config, episodes)
        curve = [{"env_steps": 0, "train_seconds": 0.0, **summary(agents, returns, lengths),
                  "action_norm_mean": greedy.action_norm_mean}]
        print(env_key, setting, seed, "random", summary(agents, rnd_returns, rnd_lengths)["summed_return_mean"],
              "untrained", curve[0]["summed_return_mean"], "|a|", curve[0]["action_norm_mean"], flush=True)
        steps, seconds, next_eval, train_returns = 0, 0.0, eval_every, []
        while steps < budget:
            t0 = time.time()
            result = algo.train()
            seconds += time.time() - t0
            steps = result["num_env_steps_sampled_lifetime"]
            train_returns.append([steps, result["env_runners"].get("episode_return_mean")])
            if steps >= next_eval or steps >= budget:
                agents, returns, lengths = greedy(algo, env_name, env_config, episodes)
                learner = {pid: {k: v for k, v in info.get("learner_stats", {}).items()
                                 if isinstance(v, (int, float))}
                           for pid, info in result.get("info", {}).get("learner", {}).items()
                           if isinstance(info, dict)}
                curve.append({"env_steps": int(steps), "train_seconds": round(seconds, 1),
                              **summary(agents, returns, lengths), "learner_stats": learner,
                              "action_norm_mean": greedy.action_norm_mean})
                next_eval = (steps // eval_every + 1) * eval_every
                print(env_key, setting, seed, steps, f"{steps / seconds:.0f} steps/s", "greedy",
                      round(curve[-1]["summed_return_mean"], 1), "train", train_returns[-1][1],
                      "|a|", curve[-1]["action_norm_mean"], "learner", learner, flush=True)
    finally:
        algo.stop()
    return {
        "env": env_key, "env_name": env_name, "env_config": env_config, "setting": setting,
        "overrides": SETTINGS[setting], "seed": seed, "budget": budget, "agents": agents,
        "eval_episodes": episodes, "eval_seeds": f"10000..{10000 + episodes - 1}",
        "env_steps_per_s": round(steps / seconds, 1), "wall_s": round(time.time() - start, 1),
        "random": summary(agents, rnd_returns, rnd_lengths),
        "untrained": curve[0], "final": curve[-1],
        "best_greedy_summed_return": max(c["summed_return_mean"] for c in curve),
        "curve": curve, "train_episode_return_mean": train_returns,
    }


def marl_eval(record):
    """The run in marl-eval's JSON format (one task per env, algo = MADDPG-<setting>);
    "return" is the summed (team) return of each evaluation episode."""
    steps = {f"step_{i}": {"step_count": c["env_steps"], "return": c["summed_returns"]}
             for i, c in enumerate(record["curve"])}
    run = {**steps, "absolute_metrics": {"return": record["final"]["summed_returns"]}}
    return {record["env"]: {record["env_name"].split("/")[-1]: {
        f"MADDPG-{record['setting']}": {f"seed_{record['seed']}": run}}}}


def git_commit(paths, message):
    subprocess.run(["git", "add", *paths], check=True)
    subprocess.run(["git", "commit", "-q", "-m", message, "--", *paths], check=True)


def table(out):
    records = []
    for name in sorted(os.listdir(out)):
        if "__" in name and name.endswith(".json") and not name.endswith(".marl_eval.json"):
            with open(os.path.join(out, name)) as f:
                records.append(json.load(f))
    rows = ["| env | setting | seed | budget | env steps/s | random | untrained greedy | final greedy | best greedy after step 0 (at env steps) | training return, last 10k steps (exploring) |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        if "skipped" in r:
            rows.append(f"| {r['env']} | {r['setting']} | {r['seed']} | skipped: {r['skipped']} | | | | | | |")
            continue
        best = max(r["curve"][1:], key=lambda c: c["summed_return_mean"])
        last = [x for s, x in r["train_episode_return_mean"] if s > r["train_episode_return_mean"][-1][0] - 10_000
                and x is not None and x == x]
        rows.append(f"| {r['env']} | {r['setting']} | {r['seed']} | {r['budget']} | {r['env_steps_per_s']:.0f} | "
                    f"{r['random']['summed_return_mean']:.1f} | {r['untrained']['summed_return_mean']:.1f} | "
                    f"{r['final']['summed_return_mean']:.1f} | {best['summed_return_mean']:.1f} ({best['env_steps']}) | "
                    f"{np.mean(last) if last else float('nan'):.1f} |")
    print("\n".join(rows))


# The best setting found per env (the summary's last column), by the measurements
# in docs/third_party.md.
BEST = {"multiwalker": "shared_td3_n01_nstep3", "pendulum": "shared_td3", "cartpole": "shared_discrete",
        "two_step_game": "shared_discrete", "waterworld": "shared_ddpg_local_reg",
        "pursuit": "shared_discrete", "kaz": "shared_discrete"}


def summary_table(out):
    """Per env: random, untrained greedy, default and best setting's final greedy
    summed returns, over the seeds run at the same budget (no --tag)."""
    records = [r for r in load(out) if not r.get("command", "").count("--tag")]
    rows = ["| env | budget | seeds | random | untrained greedy (default) | default: final greedy | "
            "best setting | best: final greedy | best: untrained greedy | env steps/s default / best |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    fmt = lambda xs: " / ".join(f"{x:.1f}" for x in xs)
    for env, best in BEST.items():
        d = sorted([r for r in records if r["env"] == env and r["setting"] == "default"], key=lambda r: r["seed"])
        b = sorted([r for r in records if r["env"] == env and r["setting"] == best], key=lambda r: r["seed"])
        if not d or not b:
            continue
        rows.append(
            f"| {env} | {d[0]['budget']} / {b[0]['budget']} | {','.join(str(r['seed']) for r in b)} | "
            f"{d[0]['random']['summed_return_mean']:.1f} | {fmt(r['untrained']['summed_return_mean'] for r in d)} | "
            f"{fmt(r['final']['summed_return_mean'] for r in d)} | {best} | "
            f"{fmt(r['final']['summed_return_mean'] for r in b)} | {fmt(r['untrained']['summed_return_mean'] for r in b)} | "
            f"{np.mean([r['env_steps_per_s'] for r in d]):.0f} / {np.mean([r['env_steps_per_s'] for r in b]):.0f} |")
    print("\n".join(rows))


def load(out):
    records = []
    for name in sorted(os.listdir(out)):
        if "__" in name and name.endswith(".json") and not name.endswith(".marl_eval.json"):
            with open(os.path.join(out, name)) as f:
                r = json.load(f)
            if "skipped" not in r:
                records.append(r)
    return records


def aggregate(out):
    """Per env and setting: the interquartile mean of the seeds' final greedy
    summed returns with a 95% stratified bootstrap CI (rliable), the merged
    marl-eval JSON, and one plot of the greedy curves per env (matplotlib).
    Needs matplotlib; the IQM needs rliable (the `stats` extra), else it is
    recorded as unavailable, with the reason."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    try:
        from rliable import library as rly
        from rliable import metrics
    except Exception as e:  # rliable 1.2's arch 7.2 fails to import under pandas 3 (the extra pins pandas<3)
        rly, rliable_error = None, f"{type(e).__name__}: {e}"

    records = load(out)
    merged, stats = {}, {}
    for r in records:
        for env, tasks in marl_eval(r).items():
            for task, algos in tasks.items():
                for algo, runs in algos.items():
                    merged.setdefault(env, {}).setdefault(task, {}).setdefault(algo, {}).update(runs)
    with open(os.path.join(out, "marl_eval.json"), "w") as f:
        json.dump(merged, f)
    groups = {}
    for r in records:
        groups.setdefault((r["env"], r["setting"], r["budget"]), []).append(r)
    for (env, setting, budget), runs in sorted(groups.items()):
        scores = np.array([[r["final"]["summed_return_mean"]] for r in runs])  # [seeds, 1 task]
        if rly is not None:
            point, interval = rly.get_interval_estimates(
                {setting: scores}, lambda x: np.array([metrics.aggregate_iqm(x)]), reps=2000,
                random_state=np.random.RandomState(0))  # the same CI on every rerun
            iqm = {"iqm": float(point[setting][0]),
                   "ci95": [float(interval[setting][0][0]), float(interval[setting][1][0])]}
        else:
            iqm = {"iqm": None, "rliable_unavailable": rliable_error}
        stats[f"{env}/{setting}/{budget}"] = {
            "seeds": [r["seed"] for r in runs], "final_summed_returns": scores[:, 0].tolist(), **iqm,
            "random": float(np.mean([r["random"]["summed_return_mean"] for r in runs])),
            "untrained": float(np.mean([r["untrained"]["summed_return_mean"] for r in runs])),
            "env_steps_per_s": float(np.mean([r["env_steps_per_s"] for r in runs]))}
    with open(os.path.join(out, "aggregate.json"), "w") as f:
        json.dump(stats, f, indent=1)
    for env in sorted({r["env"] for r in records}):
        plt.figure(figsize=(5, 3.2))
        for (e, setting, budget), runs in sorted(groups.items()):
            if e != env:
                continue
            for k, r in enumerate(runs):
                xs = [c["env_steps"] for c in r["curve"]]
                ys = [c["summed_return_mean"] for c in r["curve"]]
                plt.plot(xs, ys, color=f"C{sorted(SETTINGS).index(setting) % 10}", alpha=0.8,
                         label=f"{setting}" if k == 0 else None)
        rnd = np.mean([r["random"]["summed_return_mean"] for r in records if r["env"] == env])
        plt.axhline(rnd, color="grey", linestyle=":", label="random")
        plt.xlabel("env steps"); plt.ylabel("greedy return (summed over agents)"); plt.title(env)
        plt.legend(fontsize=7); plt.tight_layout()
        plt.savefig(os.path.join(out, f"{env}.png"), dpi=100); plt.close()
    for key, s in stats.items():
        print(key, s)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", choices=list(ENVS))
    parser.add_argument("--setting", choices=list(SETTINGS), default="default")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--budget", type=int, default=100_000)
    parser.add_argument("--eval-every", type=int, default=25_000)
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--out", default="docs/third_party")
    parser.add_argument("--tag", default="", help="suffix of the run's file names (e.g. a second budget)")
    parser.add_argument("--commit", action="store_true", help="git-commit each JSON once written")
    parser.add_argument("--table", action="store_true", help="print the table of --out and exit")
    parser.add_argument("--summary", action="store_true", help="per env: random, untrained, default, best; then exit")
    parser.add_argument("--aggregate", action="store_true",
                        help="IQM + 95%% CIs (rliable), merged marl-eval JSON and plots of --out, then exit")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    if args.table:
        return table(args.out)
    if args.aggregate:
        return aggregate(args.out)
    if args.summary:
        return summary_table(args.out)
    if args.env is None:
        parser.error("--env is required")
    import ray
    import torch

    import rllib_maddpg  # noqa: F401  (registers MADDPG)

    torch.set_num_threads(1)
    register_extra_envs()
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        for seed in args.seeds:
            stem = os.path.join(args.out, f"{args.env}__{args.setting}__seed{seed}"
                                + (f"__{args.tag}" if args.tag else ""))
            if os.path.exists(stem + ".json"):
                print(f"{stem}.json exists, skipped")
                continue
            record = run(args.env, args.setting, seed, args.budget, args.eval_every, args.eval_episodes)
            record["command"] = " ".join(["python", "benchmarks/third_party.py"] + sys.argv[1:])
            with open(stem + ".json", "w") as f:
                json.dump(record, f)
            written = [stem + ".json"]
            if "skipped" not in record:
                with open(stem + ".marl_eval.json", "w") as f:
                    json.dump(marl_eval(record), f)
                written.append(stem + ".marl_eval.json")
            print(f"wrote {stem}.json", flush=True)
            if args.commit:
                final = record.get("final", {}).get("summed_return_mean")
                git_commit(written, f"third_party: {args.env} {args.setting} seed {seed}, "
                           f"{args.budget} env steps (greedy summed return {final})")
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
