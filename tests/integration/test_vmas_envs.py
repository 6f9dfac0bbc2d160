"""vmas/<scenario> as a user runs it: MADDPG trains on VMAS's simple_spread port, its
copies stepped in one call by the lockstep sampler, in the driver and on a remote env
runner. Skipped where the vmas extra is not installed."""

import pytest

pytest.importorskip("vmas", reason="the vmas extra is not installed")

from rllib_maddpg import MADDPGConfig

pytestmark = pytest.mark.integration

SMALL = dict(num_steps_sampled_before_learning_starts=400, train_batch_size=64,
             min_sample_timesteps_per_iteration=400, env_steps_per_update=100)


@pytest.mark.parametrize("runners", [0, 1], ids=["driver", "remote_runner"])
def test_training_on_a_vmas_scenario(ray_local, runners):
    config = (MADDPGConfig()
              .environment("vmas/simple_spread", env_config={"n_agents": 3, "max_steps": 25})
              .env_runners(num_env_runners=runners, num_envs_per_env_runner=16,
                           rollout_fragment_length=25)
              .debugging(seed=0).update_from_dict(SMALL))
    algo = config.build_algo()
    try:
        assert [a.agent_id for a in algo.agents] == ["agent_0", "agent_1", "agent_2"]
        for _ in range(2):
            result = algo.train()
        assert result["env_runners"]["num_episodes"] >= 16
        assert result["env_runners"]["episode_len_mean"] == 25
        assert result["info"]["learner"]
    finally:
        algo.stop()
