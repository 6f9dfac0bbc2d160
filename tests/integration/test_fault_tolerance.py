"""An env runner that crashes mid-training is restarted and MADDPG keeps training.

Uses the fault-tolerance keys of the tuned examples. The runner's process is
killed with SIGKILL between two iterations (a crash, OOM kill or lost node:
Ray restarts the actor, as `restart_failed_env_runners` asks), once with
sampling and learning overlapped (one sample request always in flight, which
the kill interrupts) and once sequential.

While the runner restarts, the driver samples (`sample_on_driver_when_runners_down`).
A runner killed for good (`ray.kill(runner)`, default `no_restart=True`)
cannot come back: training must then fail with RLlib's error after
`num_consecutive_env_runner_failures_tolerance` empty steps, not hang.
"""

import os
import signal
import time

import numpy as np
import pytest
import yaml

from rllib_maddpg import ray_compat

pytestmark = pytest.mark.integration

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FAULT_TOLERANCE_KEYS = ("restart_failed_env_runners", "max_num_env_runner_restarts")
STEPS_PER_ITERATION = 500


def tuned_fault_tolerance(name="simple_spread"):
    with open(os.path.join(REPO, "tuned_examples", f"{name}.yaml"), encoding="utf-8") as f:
        (experiment,) = yaml.safe_load(f).values()
    return {key: experiment["config"][key] for key in FAULT_TOLERANCE_KEYS}


def runner_pids(algo):
    return algo.env_runner_group.foreach_env_runner(lambda w: os.getpid(), local_env_runner=False)


@pytest.mark.parametrize("overlap", [True, False], ids=["overlapped", "sequential"])
def test_training_goes_on_after_the_env_runner_is_killed(ray_local, overlap):
    from rllib_maddpg import MADDPGConfig

    config = (
        MADDPGConfig()
        .environment("mpe/simple_spread")
        .env_runners(num_env_runners=1, num_envs_per_env_runner=2, rollout_fragment_length=25)
        .reporting(min_sample_timesteps_per_iteration=STEPS_PER_ITERATION)
        .env_runners(overlap_sampling_and_learning=overlap)
        .training(num_steps_sampled_before_learning_starts=200, train_batch_size=32)
        .update_from_dict(tuned_fault_tolerance())
    )
    assert config.restart_failed_env_runners
    algo = config.build_algo()
    try:
        for _ in range(2):
            before = algo.train()
        assert before["num_remote_worker_restarts"] == 0
        (pid,) = runner_pids(algo)

        os.kill(pid, signal.SIGKILL)

        # Training does not wait for the restart: the driver samples meanwhile
        # (sample_on_driver_when_runners_down), then the restarted runner again.
        steps, deadline = before["num_env_steps_sampled_lifetime"], time.time() + 300
        while True:
            result = algo.train()
            assert result["num_env_steps_sampled_lifetime"] >= steps + STEPS_PER_ITERATION
            steps = result["num_env_steps_sampled_lifetime"]
            if result["num_healthy_workers"] == 1 or time.time() > deadline:
                break
        assert result["num_remote_worker_restarts"] >= 1
        assert result["num_healthy_workers"] == 1
        on_driver = result["fault_tolerance"]["env_steps_sampled_on_driver"]
        result = algo.train()
        assert result["fault_tolerance"]["env_steps_sampled_on_driver"] == on_driver  # the runner sampled
        assert result["fault_tolerance"]["num_env_runners_down"] == 0
        assert result["info"]["num_env_steps_trained"] > before["info"]["num_env_steps_trained"]
        # Ray re-ran the runner's constructor in a new process (RLlib's
        # `recreated_worker` flag stays False for a Ray-level restart).
        (new_pid,) = runner_pids(algo)
        assert new_pid != pid

        # The restarted runner acts with the learner's current weights.
        learner = algo.get_policy("agent_0").get_weights()
        (runner,) = algo.env_runner_group.foreach_env_runner(
            lambda w: w.get_policy("agent_0").get_weights(), local_env_runner=False
        )
        assert learner.keys() == runner.keys()
        for key in learner:
            assert (learner[key] == runner[key]).all(), key
    finally:
        algo.stop()


def test_a_runner_lost_for_good_ends_training_with_an_error(ray_local):
    import ray

    from rllib_maddpg import MADDPGConfig

    config = (
        MADDPGConfig()
        .environment("mpe/simple_spread")
        .env_runners(num_env_runners=1, num_envs_per_env_runner=2, rollout_fragment_length=25,
                     sample_timeout_s=2.0)
        .fault_tolerance(num_consecutive_env_runner_failures_tolerance=3)
        .reporting(min_sample_timesteps_per_iteration=STEPS_PER_ITERATION)
        .training(num_steps_sampled_before_learning_starts=200, train_batch_size=32)
        .update_from_dict(tuned_fault_tolerance())
    )
    algo = config.build_algo()
    try:
        algo.train()
        (actor,) = ray_compat.worker_manager(algo.env_runner_group).actors().values()
        ray.kill(actor)  # no_restart=True: gone for good
        with pytest.raises(RuntimeError, match="consecutive"):
            for _ in range(5):
                algo.train()
    finally:
        algo.stop()


@pytest.mark.parametrize("learners", [{"per_agent_learners": True}, {"data_parallel_learners": 2}],
                         ids=["per_agent", "data_parallel"])
def test_lost_learner_actors_fall_back_to_the_local_learner_and_come_back(ray_local, learners):
    """Learner actors lost (as with their node): training goes on in the driver, and new
    learner actors take over once Ray has placed them (here at once: the CPUs are free)."""
    import ray

    from rllib_maddpg import MADDPGConfig

    config = (
        MADDPGConfig()
        .environment("mpe/simple_spread")
        .env_runners(num_env_runners=0, num_envs_per_env_runner=2, rollout_fragment_length=25)
        .reporting(min_sample_timesteps_per_iteration=STEPS_PER_ITERATION)
        .training(num_steps_sampled_before_learning_starts=200, train_batch_size=32)
        .learners(learner_resources={"CPU": 0.5}, **learners)
    )
    algo = config.build_algo()
    try:
        rounds = algo.train()["counters"]["maddpg_num_update_rounds"]
        assert rounds > 0
        lost = list(algo.learners.actors().values())
        for actor in lost:
            ray.kill(actor)
        result = algo.train()
        assert algo.learners is None
        assert result["fault_tolerance"]["num_learner_fallbacks"] == 1
        assert result["fault_tolerance"]["num_learner_returns"] == 0
        rounds_local = result["counters"]["maddpg_num_update_rounds"]
        # New actors start in seconds on a quiet machine, in a minute or more on a busy 2-core one.
        deadline = time.time() + 300
        while algo.learners is None and time.time() < deadline:
            time.sleep(1)  # leave the CPUs to the starting actors
            result = algo.train()  # each step checks, without waiting, whether the new ones are up
        assert algo.learners is not None, "the new learner actors never took over"
        assert not set(algo.learners.actors().values()) & set(lost)
        assert result["fault_tolerance"]["num_learner_returns"] == 1
        assert result["fault_tolerance"]["learners_down_time_s"] > 0
        assert result["counters"]["maddpg_num_update_rounds"] > rounds_local
        # The driver's policies went to them (per-agent learners hold the state): what they
        # learn next starts from the driver's weights, and what comes back is finite.
        result = algo.train()
        assert all(np.isfinite(s["learner_stats"]["critic_loss"])
                   for s in result["info"]["learner"].values())
        if learners.get("per_agent_learners"):
            before = {pid: p.get_critic_weights()["critic"] for pid, p in algo.policies_by_id().items()}
            algo.learners.pull_states(algo.policies_by_id())
            after = {pid: p.get_critic_weights()["critic"] for pid, p in algo.policies_by_id().items()}
            assert all(any(not np.array_equal(before[pid][k], after[pid][k]) for k in before[pid])
                       for pid in before)  # the critics live and learn on the learner actors
    finally:
        algo.stop()


def genetic_population(size):
    from rllib_maddpg.genetic import GeneticMADDPGConfig

    config = (GeneticMADDPGConfig().environment("mpe/simple_tag").debugging(seed=0)
              .env_runners(num_env_runners=0)
              .update_from_dict(dict(num_steps_sampled_before_learning_starts=300, train_batch_size=64,
                                     min_sample_timesteps_per_iteration=500, population_size=size,
                                     member_resources={"CPU": 0.5})))
    return config.build_algo()


def test_a_lost_genetic_member_is_replaced_by_a_copy_of_the_best(ray_local):
    import ray

    algo = genetic_population(3)
    try:
        first = algo.train()
        ray.kill(algo.members[1])  # as with its node
        result = algo.train()  # the others' iteration counts; member 1 is being replaced
        assert result["num_member_replacements"] == 1
        assert result["members"]["1"]["being_replaced"] == 1
        (source,) = {src for _, src in algo.replacing.values()}
        assert source in (0, 2)
        steps_1 = result["members"]["1"]["num_env_steps_sampled_lifetime"]
        assert steps_1 == first["members"]["1"]["num_env_steps_sampled_lifetime"]  # nothing new from it
        ray.get(algo.replacing[1][0], timeout=180)  # placed and restored (Ray placed it: CPUs are free)

        # The copy is its source as the source was after this step: actors and critics.
        def weights(algo_):
            return {pid: algo_.get_policy(pid).get_weights() for pid in algo_.config.policies}

        copy, original = ray.get([algo.members[1].apply.remote(weights), algo.members[source].apply.remote(weights)])
        assert copy.keys() == original.keys()
        for pid in copy:
            assert all(np.array_equal(copy[pid][k], original[pid][k]) for k in copy[pid])

        result = algo.train()  # it trains again, and only its own new env steps count
        assert not algo.replacing and result["members"]["1"]["being_replaced"] == 0
        new_steps = result["members"]["1"]["num_env_steps_sampled_lifetime"] - steps_1
        assert 500 <= new_steps <= result["num_env_steps_sampled_this_iter"] // 2
        assert len(algo.foreach_member(lambda a: a.iteration)) == 3
    finally:
        algo.stop()


def test_losing_every_genetic_member_is_a_clear_error(ray_local):
    import ray

    algo = genetic_population(2)
    try:
        algo.train()
        for member in algo.members:
            ray.kill(member)
        with pytest.raises(RuntimeError, match=r"lost every member .*member 0 on node .*--resume"):
            algo.train()
    finally:
        algo.stop()
