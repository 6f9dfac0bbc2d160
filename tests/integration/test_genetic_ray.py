"""Genetic MADDPG on a small local Ray: members train in parallel, critics sync, checkpoints."""

import os

import numpy as np
import pytest

from rllib_maddpg.genetic import GeneticMADDPGConfig, agent_policies

pytestmark = pytest.mark.integration

# Two members of one CPU each on the 2-CPU test Ray; 500 env steps per iteration,
# so a sync every 1000 steps falls after iterations 2, 4, ...
SMALL = dict(num_steps_sampled_before_learning_starts=300, train_batch_size=64,
             min_sample_timesteps_per_iteration=500, population_size=2,
             critic_sync_interval=1000, sync_metric="policy_reward_mean/adversary_0")


def small_config():
    return (GeneticMADDPGConfig().environment("mpe/simple_tag").debugging(seed=0)
            .env_runners(num_env_runners=0).update_from_dict(SMALL))


def nets(algo):
    """Every member's {policy id: {net: flat parameters}}."""
    def read(member):
        return {pid: {net: np.concatenate([p.detach().numpy().ravel()
                                           for p in getattr(policy.model, net).parameters()])
                      for net in ("actor", "critic", "target_actor", "target_critic")}
                for pid, policy in agent_policies(member).items()}
    return algo.foreach_member(read)


def test_population_syncs_critics_and_restores_from_a_checkpoint(ray_local, tmp_path):
    algo = small_config().build_algo()
    try:
        results = [algo.train() for _ in range(2)]
        # Right after the sync (iteration 2), critics agree and actors do not.
        members = nets(algo)
        for pid in members[0]:
            for net in ("critic", "target_critic"):
                np.testing.assert_array_equal(members[0][pid][net], members[1][pid][net])
            assert not np.array_equal(members[0][pid]["actor"], members[1][pid]["actor"])
        results.append(algo.train())
        assert [r["critic_synced_this_iter"] for r in results] == [0, 1, 0]
        assert [r["num_critic_syncs"] for r in results] == [0, 1, 1]
        assert [r["num_env_steps_sampled_lifetime"] for r in results] == [1000, 2000, 3000]
        source = results[1]["last_critic_sync_source"]
        assert source == int(np.argmax([results[1]["members"][i]["sync_metric_value"]
                                        for i in ("0", "1")]))
        last = results[-1]
        assert sorted(last["members"]) == ["0", "1"]
        values = [last["members"][i]["sync_metric_value"] for i in ("0", "1")]
        assert last["best_member"] == int(np.argmax(values))
        assert last["env_runners"]["policy_reward_mean"]["adversary_0"] == max(values)

        checkpoint = algo.save(str(tmp_path / "ckpt")).checkpoint.path
        saved = nets(algo)
        assert algo.train()["num_critic_syncs"] == 2  # iteration 4 changes every network
        algo.restore(checkpoint)
        for before, after in zip(saved, nets(algo)):
            for pid in before:
                for net, values in before[pid].items():
                    np.testing.assert_array_equal(after[pid][net], values)
        result = algo.train()  # iteration 4 again, from the restored counters
        assert (result["num_critic_syncs"], result["critic_synced_this_iter"]) == (2, 1)
        assert result["num_env_steps_sampled_lifetime_per_member"] == 2000
    finally:
        algo.stop()


def test_tuner_runs_genetic_maddpg_by_name(ray_local, tmp_path):
    from ray import tune

    results = tune.Tuner(
        "GeneticMADDPG",
        param_space=small_config().to_dict(),
        run_config=tune.RunConfig(
            stop={"training_iteration": 2}, storage_path=str(tmp_path), verbose=0,
            checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=True)),
    ).fit()
    assert not results.errors, results.errors
    result = results[0]
    assert result.metrics["num_critic_syncs"] == 1
    assert set(result.metrics["members"]) == {"0", "1"}
    # One RLlib checkpoint per member, each loadable on its own.
    assert os.path.exists(os.path.join(result.checkpoint.path, "member_1", "rllib_checkpoint.json"))
