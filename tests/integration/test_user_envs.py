"""Envs as users bring them, end to end: build, train, checkpoint, restore in a
fresh process, and act alone from the checkpoint on the env's raw observations.

pursuit_v5 (Box(7, 7, 3) observations, 8 agents), multiwalker_v9 (walkers
that fall end the episode), knights_archers_zombies_v11 (Box(27, 5)
observations; agents die), RLlib's MultiAgentCartPole (each agent's
sub-env ends on its own), a PettingZoo env with Dict observations, and a
native env with image-shaped observations. Envs whose package is missing
are skipped with the reason (the versions: docs/envs.md).
"""

import glob
import json
import os
import subprocess
import sys
import textwrap
import warnings

import pytest

import user_envs

pytestmark = pytest.mark.integration

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CASES = {
    "user/pursuit_v5": {"max_cycles": 50},
    "user/multiwalker_v9": {},
    "user/knights_archers_zombies_v11": {"max_cycles": 200},
    "user/multi_agent_cartpole": {},
    "user/dict_obs": {},
    "user/image_obs": {},
}
# Each env's agents: whether some leave before the episode ends (masked critics).
MASKED = {"user/pursuit_v5": True, "user/multiwalker_v9": True,
          "user/knights_archers_zombies_v11": True, "user/multi_agent_cartpole": True,
          "user/dict_obs": True, "user/image_obs": True}


def small_config(env, env_config):
    from rllib_maddpg import MADDPGConfig

    return (
        MADDPGConfig()
        .environment(env, env_config=env_config)
        .env_runners(num_env_runners=0, num_envs_per_env_runner=2, rollout_fragment_length=50)
        .training(num_steps_sampled_before_learning_starts=200, train_batch_size=64,
                  env_steps_per_update=50, actor_hiddens=[32], critic_hiddens=[32])
        .reporting(min_sample_timesteps_per_iteration=200)
        .debugging(seed=0)
    )


RESTORE = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, {tests!r})
    import user_envs  # registers the envs, as the user's own code would
    from ray.rllib.algorithms.algorithm import Algorithm
    from ray.rllib.policy.policy import Policy
    from ray.tune.registry import ENV_CREATOR, _global_registry

    algo = Algorithm.from_checkpoint({checkpoint!r})
    steps = algo.train()["num_env_steps_sampled_lifetime"]
    algo.stop()
    env = _global_registry.get(ENV_CREATOR, {env!r})({env_config!r})
    obs, _ = env.reset(seed=1)
    actions = {{}}
    for agent_id, agent_obs in obs.items():
        policy = Policy.from_checkpoint({checkpoint!r} + "/policies/" + str(agent_id))
        action, _, _ = policy.compute_single_action(agent_obs, explore=False)
        assert env.get_action_space(agent_id).contains(action), (agent_id, action)
        actions[agent_id] = action
    env.step(actions)
    acted = [str(a) for a in actions]
    print(json.dumps({{"steps": steps, "acted": sorted(acted)}}))
""")


@pytest.mark.parametrize("env", list(CASES))
def test_user_env_trains_checkpoints_restores_and_acts_alone(env, ray_local, tmp_path):
    reason = user_envs.missing(env)
    if reason:
        pytest.skip(reason)
    config = small_config(env, CASES[env])
    algo = config.build_algo()
    assert algo.config._maddpg_masked == MASKED[env]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            result = algo.train()
    after_done = [w for w in caught if "already returned terminated" in str(w.message)]
    assert not after_done, after_done[0].message  # no action after an agent finished
    assert result["num_env_steps_sampled_lifetime"] >= 400
    assert result["info"]["learner"], "no update ran"
    for stats in result["info"]["learner"].values():
        assert stats["learner_stats"]["critic_loss"] == stats["learner_stats"]["critic_loss"]  # not NaN
    checkpoint = algo.save(str(tmp_path / "ckpt")).checkpoint.path
    steps = result["num_env_steps_sampled_lifetime"]
    algo.stop()

    code = RESTORE.format(tests=TESTS, checkpoint=checkpoint, env=env, env_config=CASES[env])
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "RAY_ADDRESS": ""})
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["steps"] > steps  # training went on from the checkpoint
    assert out["acted"]


def test_rllib_train_file_and_evaluate_a_pettingzoo_env_whose_agents_die(tmp_path):
    """As README shows it for YAML: a PettingZoo env named by its module through
    rllib_maddpg.envs.PettingZooEnv (no registration needed in any process),
    knights_archers_zombies_v11 with its (27, 5) vector observations and agents
    that get killed; `rllib evaluate` then plays the checkpoint's actors on
    the env's raw observations."""
    reason = user_envs.missing("user/knights_archers_zombies_v11")
    if reason:
        pytest.skip(reason)
    (tmp_path / "kaz.yaml").write_text(textwrap.dedent("""\
        kaz:
          run: MADDPG
          env: rllib_maddpg.envs.PettingZooEnv
          stop: {training_iteration: 2}
          checkpoint_config: {checkpoint_at_end: true}
          config:
            env_config: {pettingzoo_env: pettingzoo.butterfly.knights_archers_zombies_v11, max_cycles: 100}
            min_sample_timesteps_per_iteration: 300
            num_steps_sampled_before_learning_starts: 300
            train_batch_size: 64
            actor_hiddens: [32]
            critic_hiddens: [32]
        """))
    cli = [sys.executable, "-m", "rllib_maddpg.cli"]
    proc = subprocess.run(cli + ["train", "file", str(tmp_path / "kaz.yaml"), "--storage-path",
                                 str(tmp_path / "results"), "--ray-num-cpus", "2"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    trial = glob.glob(str(tmp_path / "results" / "kaz" / "MADDPG_*"))[0]
    proc = subprocess.run(cli + ["evaluate", trial, "--episodes", "2", "--seed", "0"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    for agent in ("archer_0", "archer_1", "knight_0", "knight_1"):
        assert any(line.split()[:1] == [agent] for line in proc.stdout.splitlines()), proc.stdout
