"""MADDPG end to end on a small local Ray: train, joint data, determinism, checkpoints."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from rllib_maddpg import MADDPGConfig
from rllib_maddpg.core import joint as jb
from support import OBS_DIMS, StampEnv

pytestmark = pytest.mark.integration

SMALL = dict(num_steps_sampled_before_learning_starts=300, train_batch_size=64,
             min_sample_timesteps_per_iteration=500)


def small_config(env="mpe/simple_adversary", seed=0, **overrides):
    config = (MADDPGConfig().environment(env).debugging(seed=seed)
              .env_runners(num_env_runners=0))
    return config.update_from_dict({**SMALL, **overrides})


def test_build_and_train_updates_every_agent(ray_local):
    algo = small_config().build_algo()
    try:
        result = algo.train()
        learner = result["info"]["learner"]
        assert sorted(learner) == ["adversary_0", "agent_0", "agent_1"]
        for stats in learner.values():
            assert np.isfinite(stats["learner_stats"]["critic_loss"])
        assert result["num_env_steps_sampled_lifetime"] >= 500
        # The first update when D holds 300 steps, then one per 100 env steps.
        assert result["counters"]["maddpg_num_update_rounds"] == (
            (result["num_env_steps_sampled_lifetime"] - 300) // 100 + 1)
        assert set(result["env_runners"]["policy_reward_mean"]) == set(learner)
    finally:
        algo.stop()


@pytest.mark.parametrize("lockstep", [True, False], ids=["lockstep_sampler", "rllib_sampler"])
@pytest.mark.parametrize("terminate", [False, True])
def test_replay_rows_are_aligned_env_steps_of_all_agents(ray_local, terminate, lockstep):
    """StampEnv's observations say (agent, t, episode): every joint row must agree."""
    config = small_config(StampEnv, env_config={"terminate": terminate, "episode_len": 7},
                          explore=False, num_steps_sampled_before_learning_starts=10**6,
                          use_lockstep_sampler=lockstep)
    config.env_runners(num_envs_per_env_runner=3, rollout_fragment_length=10)
    algo = config.build_algo()
    try:
        result = algo.train()
        buf = algo.local_replay_buffer
        rows = buf.get_state()["data"]
        t = rows[jb.obs_col(0)][:, 1]
        stamp = rows[jb.obs_col(0)][:, 2]
        for k in range(3):
            obs, new_obs = rows[jb.obs_col(k)], rows[jb.new_obs_col(k)]
            assert obs.shape[1] == OBS_DIMS[k]
            np.testing.assert_array_equal(obs[:, 0], k)
            np.testing.assert_array_equal(obs[:, 1], t)        # same step
            np.testing.assert_array_equal(obs[:, 2], stamp)    # same episode
            np.testing.assert_array_equal(new_obs[:, 1], t + 1)
            np.testing.assert_array_equal(new_obs[:, 2], stamp)
            np.testing.assert_allclose(rows[jb.rewards_col(k)], k + 0.1 * (t + 1), rtol=1e-6)
            last = t + 1 == 7
            np.testing.assert_array_equal(rows[jb.terminateds_col(k)], last & terminate)
            # The stored action is what agent k's actor did on that observation.
            policy = algo.get_policy(str(k))
            _, _, extra = policy.compute_actions_from_input_dict({"obs": obs}, explore=False)
            np.testing.assert_allclose(rows[jb.actions_col(k)], extra[jb.CRITIC_ACTION],
                                       rtol=1e-5, atol=1e-6)
        assert len(np.unique(stamp)) > 3  # several episodes from several envs
        assert result["env_runners"]["episode_len_mean"] == 7
        assert result["env_runners"]["episodes_this_iter"] >= 3
    finally:
        algo.stop()


@pytest.mark.parametrize("lockstep", [True, False], ids=["lockstep_sampler", "rllib_sampler"])
def test_remote_env_runners_give_aligned_rows(ray_local, lockstep):
    config = small_config(StampEnv, num_steps_sampled_before_learning_starts=10**6,
                          use_lockstep_sampler=lockstep)
    config.env_runners(num_env_runners=1, num_envs_per_env_runner=2)
    algo = config.build_algo()
    try:
        algo.train()
        buf = algo.local_replay_buffer
        obs = [buf.get_state()["data"][jb.obs_col(k)] for k in range(3)]
        for k in (1, 2):
            np.testing.assert_array_equal(obs[k][:, 1:3], obs[0][:, 1:3])
    finally:
        algo.stop()


def _learner_stats(result):
    return {pid: info["learner_stats"] for pid, info in result["info"]["learner"].items()}


def test_same_seed_same_results(ray_local):
    runs = []
    for _ in range(2):
        algo = small_config(seed=7).build_algo()
        try:
            results = [algo.train() for _ in range(2)]
            runs.append(([r["env_runners"]["episode_return_mean"] for r in results],
                         _learner_stats(results[-1])))
        finally:
            algo.stop()
    assert runs[0] == runs[1]
    other = small_config(seed=8).build_algo()
    try:
        assert [other.train()["env_runners"]["episode_return_mean"]] != runs[0][0][:1]
    finally:
        other.stop()


RESTORE_SCRIPT = r"""
import json, sys
import numpy as np
from ray.rllib.algorithms.algorithm import Algorithm
import rllib_maddpg  # registers the envs, as a user's script would
algo = Algorithm.from_checkpoint(sys.argv[1])
state = {pid: algo.get_policy(pid).get_state() for pid in ["adversary_0", "agent_0", "agent_1"]}
np.savez(sys.argv[2], **{f"{pid}/{k}": v for pid, s in state.items() for k, v in s["weights"].items()})
out = {"counters": dict(algo.__getstate__()["counters"]), "iteration": algo.iteration,
       "adam_steps": {pid: [float(o["state"][0]["step"]) for o in s["_optimizer_variables"]] for pid, s in state.items()}}
algo.train()  # and it keeps training
out["after"] = dict(algo.__getstate__()["counters"])
algo.stop()
print("RESULT " + json.dumps(out))
"""


def test_checkpoint_restores_everything_in_a_fresh_process(ray_local, tmp_path):
    algo = small_config().build_algo()
    try:
        algo.train()
        algo.train()
        checkpoint = algo.save(str(tmp_path / "ckpt")).checkpoint.path
        weights = {pid: algo.get_policy(pid).get_weights()
                   for pid in ["adversary_0", "agent_0", "agent_1"]}
        counters = dict(algo.__getstate__()["counters"])  # the state a checkpoint saves
    finally:
        algo.stop()
    out = subprocess.run(
        [sys.executable, "-c", RESTORE_SCRIPT, checkpoint, str(tmp_path / "w.npz")],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "RAY_ADDRESS": ray_local.get_runtime_context().gcs_address},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.split("RESULT ")[-1])
    restored = np.load(tmp_path / "w.npz")
    for pid, w in weights.items():
        assert any("target_critic" in k for k in w)
        for k, v in w.items():
            np.testing.assert_array_equal(restored[f"{pid}/{k}"], v)
    assert result["counters"] == {k: int(v) for k, v in counters.items()}
    assert result["iteration"] == 2
    assert all(steps == [counters["maddpg_num_update_rounds"]] * 2
               for steps in result["adam_steps"].values())
    assert result["after"]["num_env_steps_sampled"] > counters["num_env_steps_sampled"]


def test_one_agent_acts_alone_from_a_checkpoint(ray_local, tmp_path):
    """Decentralized execution: an agent's actor needs only its own observation."""
    from ray.rllib.policy.policy import Policy

    algo = small_config().build_algo()
    try:
        algo.train()
        checkpoint = algo.save(str(tmp_path / "ckpt")).checkpoint.path
        obs = np.linspace(-1, 1, 10).astype(np.float32)
        expected = algo.get_policy("agent_0").compute_single_action(obs, explore=False)[0]
    finally:
        algo.stop()
    actor = Policy.from_checkpoint(os.path.join(checkpoint, "policies", "agent_0"))
    action = actor.compute_single_action(obs, explore=False)[0]
    np.testing.assert_allclose(action, expected, rtol=1e-6)
    assert action.shape == (5,) and np.all(action >= 0) and np.all(action <= 1)


@pytest.mark.parametrize("lockstep", [True, False], ids=["lockstep_sampler", "rllib_sampler"])
@pytest.mark.parametrize("env_name", ["DiscreteObsEnv", "OldStyleEnv", "StructObsEnv", "RockPaperScissors"])
def test_native_envs_as_users_write_them_train_and_act_on_raw_observations(
        ray_local, tmp_path, env_name, lockstep):
    """Integer ids and Discrete observations (DiscreteObsEnv), agents in `_agent_ids`
    with one shared space (OldStyleEnv, as RLlib's older examples), Dict/Tuple
    observations (StructObsEnv), and RLlib's own example env RockPaperScissors, as
    it is: they train, and each actor alone from its checkpoint acts on the env's
    own observation (decentralized execution)."""
    import support
    from ray.rllib.examples.envs.classes.multi_agent.rock_paper_scissors import RockPaperScissors
    from ray.rllib.policy.policy import Policy

    from rllib_maddpg.evaluation import run_episodes

    if env_name == "RockPaperScissors" and not lockstep:
        pytest.skip("RLlib's old-stack sampler itself refuses this example env (its "
                    "truncateds dict has no '__all__')")
    env_class = RockPaperScissors if env_name == "RockPaperScissors" else getattr(support, env_name)
    algo = small_config(env_class, use_lockstep_sampler=lockstep).build_algo()
    try:
        result = algo.train()
        assert sorted(result["info"]["learner"]) == sorted(str(a.agent_id) for a in algo.agents)
        if env_name == "DiscreteObsEnv":
            assert [a.obs_dim for a in algo.agents] == [5, 5]  # one-hot, as RLlib preprocesses
            obs = algo.local_replay_buffer.get_state()["data"][jb.obs_col(1)][:10]
            np.testing.assert_array_equal(obs.sum(-1), 2.0)  # two one-hot components
        checkpoint = algo.save(str(tmp_path / "ckpt")).checkpoint.path
    finally:
        algo.stop()
    env = env_class({})
    raw_obs, _ = env.reset()
    actors = {a.policy_id: Policy.from_checkpoint(os.path.join(checkpoint, "policies", a.policy_id))
              for a in algo.agents}
    for agent in algo.agents:
        action = actors[agent.policy_id].compute_single_action(raw_obs[agent.agent_id], explore=False)[0]
        assert env.get_action_space(agent.agent_id).contains(np.asarray(action, dtype=np.float32)
                                                            if np.ndim(action) else action), action
    evaluation = run_episodes(actors, {a.agent_id: a.policy_id for a in algo.agents}, env, 2)
    assert evaluation.returns.shape == (2, len(algo.agents))


def test_tune_tuner_runs_the_registered_trainable(ray_local, tmp_path):
    from ray import tune

    config = small_config("mpe/simple_spread")
    config.evaluation(evaluation_interval=None)
    results = tune.Tuner(
        "MADDPG",
        param_space={**config.to_dict(), "tau": tune.grid_search([0.01, 0.05])},
        run_config=tune.RunConfig(stop={"training_iteration": 1}, storage_path=str(tmp_path),
                                  verbose=0),
    ).fit()
    assert not results.errors, results.errors
    assert sorted(r.config["tau"] for r in results) == [0.01, 0.05]
    assert all(r.metrics["num_env_steps_sampled_lifetime"] >= 500 for r in results)


def test_policy_inference_trains_and_reports_its_quality(ray_local):
    algo = small_config("mpe/simple_speaker_listener", infer_other_policies=["listener_0"]).build_algo()
    try:
        stats = _learner_stats(algo.train())
        assert "inference_vs_true/speaker_0" in stats["listener_0"]
        assert "inference_action_error/speaker_0" in stats["listener_0"]
        assert not any(k.startswith("inference") for k in stats["speaker_0"])
        assert len(algo.get_policy("listener_0").get_state()["_optimizer_variables"]) == 3
    finally:
        algo.stop()


@pytest.mark.parametrize("lockstep", [True, False], ids=["lockstep_sampler", "rllib_sampler"])
def test_paper_metrics_appear_in_results(ray_local, lockstep):
    algo = small_config("mpe/simple_speaker_listener", use_lockstep_sampler=lockstep,
                        num_steps_sampled_before_learning_starts=10**6).build_algo()
    try:
        custom = algo.train()["env_runners"]["custom_metrics"]
        assert 0.0 <= custom["target_reached_mean"] <= 1.0
        assert custom["target_distance_mean"] > 0
    finally:
        algo.stop()


def test_policy_ensemble_draws_per_episode_and_routes_rows_to_sub_buffers(ray_local):
    config = small_config(
        "mpe/simple_adversary", num_subpolicies=3,
        ensemble_shared_draw=[["agent_0", "agent_1"]], num_steps_sampled_before_learning_starts=300,
    )
    config.env_runners(num_envs_per_env_runner=4, rollout_fragment_length=25)
    algo = config.build_algo()
    try:
        batch = algo.env_runner.sample()
        for pid in ("adversary_0", "agent_0"):
            rows = batch.policy_batches[pid]
            for eps in np.unique(rows["eps_id"]):  # one sub-policy per episode
                assert len(np.unique(rows[jb.SUBPOLICY][rows["eps_id"] == eps])) == 1
        teammates = batch.policy_batches["agent_0"], batch.policy_batches["agent_1"]
        np.testing.assert_array_equal(teammates[0][jb.SUBPOLICY], teammates[1][jb.SUBPOLICY])
        result = algo.train()
        assert "actor_loss" in result["info"]["learner"]["adversary_0"]["learner_stats"]
        buf = algo.local_replay_buffer
        assert sum(buf.subset_size(jb.subpolicy_col(0), k) for k in range(3)) == len(buf)
        for k in range(3):
            if buf.subset_size(jb.subpolicy_col(0), k):
                rows = buf.sample(64, subset=(jb.subpolicy_col(0), k))
                assert np.all(rows[jb.subpolicy_col(0)] == k)
        assert len(np.unique(buf.get_state()["data"][jb.subpolicy_col(0)])) == 3
    finally:
        algo.stop()


def test_ensembles_need_the_lockstep_sampler():
    with pytest.raises(ValueError, match="lockstep"):
        small_config(num_subpolicies=2, use_lockstep_sampler=False).validate()


def test_evaluation_runs_the_episodes_asked_for(ray_local):
    config = small_config("mpe/simple_spread", num_steps_sampled_before_learning_starts=10**6)
    config.env_runners(num_envs_per_env_runner=4)
    config.evaluation(evaluation_interval=1, evaluation_duration=5, evaluation_duration_unit="episodes",
                      evaluation_config={"explore": False})
    algo = config.build_algo()
    try:
        runners = algo.evaluate()["env_runners"]
        assert runners["episodes_this_iter"] == 5
        assert runners["episode_len_mean"] == 25
        assert "mean_landmark_distance_mean" in runners["custom_metrics"]
    finally:
        algo.stop()


def test_replay_buffer_is_saved_only_when_asked(ray_local, tmp_path):
    from ray.rllib.algorithms.algorithm import Algorithm

    for store in (False, True):
        algo = small_config(store_buffer_in_checkpoints=store).build_algo()
        try:
            algo.train()
            size = len(algo.local_replay_buffer)
            checkpoint = algo.save(str(tmp_path / str(store))).checkpoint.path
        finally:
            algo.stop()
        restored = Algorithm.from_checkpoint(checkpoint)
        try:
            assert len(restored.local_replay_buffer) == (size if store else 0)
        finally:
            restored.stop()


def minibatch_columns_seen(algo, column):
    """Fills D (no update yet), runs one update round, and returns what each
    agent k's update received in `column(k)` (learn_on_batch replaced by a spy)."""
    algo.train()
    seen = {}
    for k, policy in enumerate(algo.agent_policies()):
        def spy(batch, actor_batches=None, k=k):
            assert jb.target_actions_col(len(algo.agents) - 1) in batch  # target actions attached
            seen[k] = batch[column(k)].numpy().astype(np.float64)
            return {"learner_stats": {}}
        policy.learn_on_batch = spy
    algo.update()
    return seen


def test_standardize_rewards_feeds_the_critics_buffer_standardised_rewards(ray_local):
    """StampEnv pays agent k the reward k + 0.1 t (t = 1..7): with standardize_rewards
    each minibatch's r_k is (r_k - mean_D(r_k)) / std_D(r_k), over the whole buffer."""
    algo = small_config(StampEnv, standardize_rewards=True,
                        num_steps_sampled_before_learning_starts=10**6).build_algo()
    try:
        seen = minibatch_columns_seen(algo, jb.rewards_col)
        buf = algo.local_replay_buffer
        for k in range(3):
            held = buf.get_state()["data"][jb.rewards_col(k)].astype(np.float64)
            raw = seen[k] * held.std() + held.mean()  # undo the standardisation
            np.testing.assert_allclose(raw, k + 0.1 * np.round((raw - k) / 0.1), atol=1e-4)
            assert abs(seen[k].mean()) < 0.3 and 0.7 < seen[k].std() < 1.3
    finally:
        algo.stop()


@pytest.mark.parametrize("independent", [False, True])
def test_independent_minibatches_give_each_agent_its_own_rows(ray_local, independent):
    """As the original code: with independent_minibatches each agent's update
    draws its own minibatch; otherwise one minibatch serves the whole round."""
    algo = small_config(StampEnv, independent_minibatches=independent,
                        num_steps_sampled_before_learning_starts=10**6).build_algo()
    try:
        seen = minibatch_columns_seen(algo, lambda k: jb.obs_col(0))
        same = [np.array_equal(seen[0], seen[k]) for k in (1, 2)]
        assert same == ([False, False] if independent else [True, True])
    finally:
        algo.stop()


@pytest.mark.parametrize("lockstep", [True, False], ids=["lockstep_sampler", "rllib_sampler"])
def test_n_step_rows_reach_the_buffer_and_train(ray_local, lockstep):
    """StampEnv (7-step episodes, reward k + 0.1 t): with n_step 3 each stored row
    bootstraps k <= 3 steps ahead, never past its episode, with gamma^k and the
    discounted sum of those k rewards; the critics then learn from the rows."""
    gamma = 0.9
    config = small_config(StampEnv, env_config={"terminate": True, "episode_len": 7}, n_step=3,
                          gamma=gamma, use_lockstep_sampler=lockstep)
    config.env_runners(num_envs_per_env_runner=3, rollout_fragment_length=10)
    algo = config.build_algo()
    try:
        result = algo.train()
        rows = algo.local_replay_buffer.get_state()["data"]
        t = rows[jb.obs_col(0)][:, 1]
        k = rows[jb.new_obs_col(0)][:, 1] - t
        assert ((k >= 1) & (k <= np.minimum(3, 7 - t))).all()
        assert (k == np.minimum(3, 7 - t)).mean() > 0.7  # only fragment ends cut a window short
        np.testing.assert_allclose(rows[jb.DISCOUNT_COL], gamma ** k, rtol=1e-6)
        for i in range(3):
            want = sum(np.where(j < k, gamma ** j * (i + 0.1 * (t + j + 1)), 0.0) for j in range(3))
            np.testing.assert_allclose(rows[jb.rewards_col(i)], want, rtol=1e-5)
            np.testing.assert_array_equal(rows[jb.terminateds_col(i)], t + k == 7)
        for stats in result["info"]["learner"].values():
            assert np.isfinite(stats["learner_stats"]["critic_loss"])
    finally:
        algo.stop()
