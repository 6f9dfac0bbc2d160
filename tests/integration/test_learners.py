"""Learners on Ray actors (learners.py): per-agent and data-parallel updates equal the local one."""

import numpy as np
import pytest
import torch

from rllib_maddpg import MADDPGConfig

pytestmark = pytest.mark.integration


MATD3 = {"twin_critics": True, "target_action_noise": 0.2, "actor_update_delay": 2}


def build(shared=False, matd3=False, **learners):
    # tanh + Gaussian heads (simplex_box_actions=False): updates are deterministic,
    # so the three ways of computing one must agree up to floating point.
    # shared: agents 0 and 1 share one policy (with agent ids); agent 2 has its own.
    # matd3: twin critics, smoothed target actions, the actor every 2nd update.
    config = (
        MADDPGConfig().environment("mpe/simple_spread")
        .multi_agent(**({"policies": {"team", "agent_2"}, "policy_mapping_fn": shared_mapping} if shared else {}))
        .training(simplex_box_actions=False, train_batch_size=96,
                  num_steps_sampled_before_learning_starts=10**6, shared_policy_agent_id=shared,
                  **(MATD3 if matd3 else {}))
        .learners(**learners)
        .env_runners(num_env_runners=0, num_envs_per_env_runner=2, rollout_fragment_length=25)
        .reporting(min_sample_timesteps_per_iteration=200)
        .debugging(seed=0)
    )
    return config.build_algo()


def shared_mapping(agent_id, *args, **kwargs):
    return "agent_2" if agent_id == "agent_2" else "team"


def full_weights(algo):
    if hasattr(algo.learners, "pull_states"):
        algo.learners.pull_states(algo.policies_by_id())
    return {pid: p.get_weights() for pid, p in algo.policies_by_id().items()}


@pytest.mark.parametrize("shared, matd3", [(False, False), (True, False), (False, True)],
                         ids=["one_policy_per_agent", "shared_policy", "matd3"])
def test_per_agent_and_data_parallel_updates_match_the_local_learner(ray_local, shared, matd3):
    local = build(shared, matd3)
    others = [build(shared, matd3, per_agent_learners=True, learner_resources={"CPU": 0}),
              build(shared, matd3, data_parallel_learners=3, learner_resources={"CPU": 0})]
    try:
        local.train()  # fills the replay buffer
        rows = local.local_replay_buffer.get_state()["data"]  # a copy
        # get_weights() returns views of the live tensors: copy them.
        start = {pid: {k: v.copy() for k, v in p.get_weights().items()}
                 for pid, p in local.policies_by_id().items()}
        for algo in [local] + others:
            if algo is not local:
                algo.local_replay_buffer.add(rows)
                for pid, policy in algo.policies_by_id().items():
                    policy.set_weights(start[pid])
                if hasattr(algo.learners, "push_states"):
                    algo.learners.push_states(algo.policies_by_id())
            algo.local_replay_buffer.reseed(123)
            torch.manual_seed(0)
            for _ in range(2):
                algo.update()
        expected = full_weights(local)
        # Adam's first steps divide each gradient element by its own magnitude, so an element
        # whose gradient is ~1e-6 turns the shards' ~1e-8 summation-order error into ~1e-5 of
        # weight; the twin critics double the elements where that can happen (one of
        # critic_2's 4416 first-layer weights was 9e-6 off). A wrong phase or a skipped
        # delay would be off by ~lr = 1e-2 everywhere.
        atol = 2e-5 if matd3 else 1e-6
        for algo, name in zip(others, ["per-agent", "data-parallel"]):
            got = full_weights(algo)
            for pid, weights in expected.items():
                for key, value in weights.items():
                    np.testing.assert_allclose(got[pid][key], value, rtol=1e-4, atol=atol,
                                               err_msg=f"{name} {pid} {key}")
        # And the weights did move.
        assert any(not np.allclose(expected[p][k], start[p][k]) for p in start for k in start[p])
    finally:
        for algo in [local] + others:
            algo.stop()


@pytest.mark.parametrize("learners", [
    {"per_agent_learners": True, "learner_resources": {"CPU": 0}},
    {"data_parallel_learners": 2, "learner_resources": {"CPU": 0}},
], ids=["per_agent", "data_parallel"])
def test_training_with_remote_learners(ray_local, learners, tmp_path):
    config = (MADDPGConfig().environment("mpe/simple_adversary")
              .training(num_steps_sampled_before_learning_starts=300, train_batch_size=64)
              .learners(**learners)
              .reporting(min_sample_timesteps_per_iteration=500).debugging(seed=0))
    algo = config.build_algo()
    try:
        result = algo.train()
        assert set(result["info"]["learner"]) == {"adversary_0", "agent_0", "agent_1"}
        checkpoint = algo.save(str(tmp_path)).checkpoint.path
    finally:
        algo.stop()
    from ray.rllib.algorithms.algorithm import Algorithm
    restored = Algorithm.from_checkpoint(checkpoint)
    try:
        assert restored.train()["num_env_steps_sampled_lifetime"] > result["num_env_steps_sampled_lifetime"]
    finally:
        restored.stop()


def test_both_learner_kinds_at_once_are_refused():
    with pytest.raises(ValueError, match="not both"):
        MADDPGConfig().environment("mpe/simple").learners(
            per_agent_learners=True, data_parallel_learners=2).validate()
