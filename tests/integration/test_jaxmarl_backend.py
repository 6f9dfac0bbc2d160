"""The JaxMARL backend as a user runs it: `mpe/<scenario>` with env_config
{"backend": "jaxmarl"}, a remote env runner whose lockstep sampler steps all its
copies in one call, the paper's metrics reported, and evaluation. Skipped where
the jaxmarl extra is not installed (benchmarks/setup_jaxmarl_venv.sh)."""

import pytest

pytest.importorskip("jaxmarl", reason="the jaxmarl extra is not installed")

from rllib_maddpg import MADDPGConfig

pytestmark = pytest.mark.integration

SMALL = dict(num_steps_sampled_before_learning_starts=400, train_batch_size=64,
             min_sample_timesteps_per_iteration=400, env_steps_per_update=100)


@pytest.mark.parametrize("runners", [0, 1], ids=["driver", "remote_runner"])
def test_training_on_the_jaxmarl_backend(ray_local, runners):
    config = (MADDPGConfig()
              .environment("mpe/simple_adversary", env_config={"backend": "jaxmarl"})
              .env_runners(num_env_runners=runners, num_envs_per_env_runner=16,
                           rollout_fragment_length=25)
              .evaluation(evaluation_interval=2, evaluation_duration=4)
              .debugging(seed=0).update_from_dict(SMALL))
    algo = config.build_algo()
    try:
        for _ in range(2):
            result = algo.train()
        runners_result = result["env_runners"]
        assert runners_result["num_episodes"] >= 16  # 16 copies, 25-step episodes
        assert runners_result["episode_len_mean"] == 25
        assert "good_success_mean" in runners_result["custom_metrics"]
        assert result["info"]["learner"]  # the critics and actors were updated
        assert result["evaluation"]["env_runners"]["episode_len_mean"] == 25
    finally:
        algo.stop()
