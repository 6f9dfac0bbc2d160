"""Batched envs as a user runs them: `mpe/<scenario>` on the JaxMARL backend and
`vmas/<scenario>`, their copies stepped in one call by the lockstep sampler, in the
driver and on a remote env runner; the paper's metrics (JaxMARL) and evaluation.
Each case is skipped where its extra (jaxmarl, vmas) is not installed."""

import pytest

from rllib_maddpg import MADDPGConfig

pytestmark = pytest.mark.integration

SMALL = dict(num_steps_sampled_before_learning_starts=400, train_batch_size=64,
             min_sample_timesteps_per_iteration=400, env_steps_per_update=100)
ENVS = {  # extra -> (env, env_config, a task metric it reports, or None)
    "jaxmarl": ("mpe/simple_adversary", {"backend": "jaxmarl"}, "good_success_mean"),
    "vmas": ("vmas/simple_spread", {"n_agents": 3, "max_steps": 25}, None),
}


@pytest.mark.parametrize("runners", [0, 1], ids=["driver", "remote_runner"])
@pytest.mark.parametrize("extra", list(ENVS))
def test_training_on_a_batched_env(ray_local, extra, runners):
    pytest.importorskip(extra, reason=f"the {extra} extra is not installed")
    env, env_config, metric = ENVS[extra]
    config = (MADDPGConfig().environment(env, env_config=env_config)
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
        if metric:
            assert metric in runners_result["custom_metrics"]
        assert result["info"]["learner"]  # the critics and actors were updated
        assert result["evaluation"]["env_runners"]["episode_len_mean"] == 25
    finally:
        algo.stop()
