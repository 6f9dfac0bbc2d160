"""MADDPGConfig: defaults, range checks, unknown keys, and agents resolved from the env."""

import gymnasium as gym
import numpy as np
import pytest

from ray.rllib.policy.policy import PolicySpec

from rllib_maddpg import MADDPGConfig
from support import StampEnv

pytestmark = pytest.mark.unit


def test_defaults_follow_the_paper():
    c = MADDPGConfig()
    assert (c.actor_lr, c.critic_lr, c.gamma, c.tau) == (1e-2, 1e-2, 0.95, 0.01)
    assert c.train_batch_size == 1024 and c.replay_buffer_config == {"capacity": 10**6}
    assert c.actor_hiddens == [64, 64] and c.critic_hiddens == [64, 64]
    assert c.env_steps_per_update == 100 and c.grad_norm_clipping == 0.5
    assert c.num_steps_sampled_before_learning_starts == 1024 * 25
    assert c.grad_norm_clipping_scope == "variable" and c.layer_init == "glorot_uniform"
    assert c.enable_rl_module_and_learner is False
    assert c.enable_env_runner_and_connector_v2 is False


def test_training_builder_sets_every_key():
    c = MADDPGConfig().training(actor_lr=0.1, tau=0.5, gamma=0.9, train_batch_size=64,
                                use_local_critic=["a"], gumbel_softmax_hard=True)
    assert (c.actor_lr, c.tau, c.gamma, c.train_batch_size) == (0.1, 0.5, 0.9, 64)
    assert c.use_local_critic == ["a"] and c.gumbel_softmax_hard is True


def test_infrastructure_builders_set_their_keys_and_pass_rllibs_on():
    c = (MADDPGConfig()
         .env_runners(use_lockstep_sampler=False, overlap_sampling_and_learning=False, num_env_runners=2)
         .learners(per_agent_learners=True, data_parallel_learners=1, learner_resources={"CPU": 0.5},
                   num_learners=0)
         .fault_tolerance(sample_on_driver_when_runners_down=False, env_runner_wait_timeout_s=5.0,
                          restart_failed_env_runners=False)
         .framework("torch", torch_num_threads=2))
    assert (c.use_lockstep_sampler, c.overlap_sampling_and_learning, c.num_env_runners) == (False, False, 2)
    assert (c.per_agent_learners, c.data_parallel_learners, c.learner_resources, c.num_learners) == (
        True, 1, {"CPU": 0.5}, 0)
    assert (c.sample_on_driver_when_runners_down, c.env_runner_wait_timeout_s,
            c.restart_failed_env_runners) == (False, 5.0, False)
    assert (c.torch_num_threads, c.framework_str) == (2, "torch")
    # Given nothing of MADDPG's, each builder leaves MADDPG's keys at their defaults.
    d = MADDPGConfig().env_runners(num_env_runners=1).learners().fault_tolerance().framework()
    assert (d.use_lockstep_sampler, d.per_agent_learners, d.env_runner_wait_timeout_s,
            d.torch_num_threads) == (True, False, 60.0, 1)


@pytest.fixture
def deprecations():
    """Messages of RLlib's deprecation_warning. It logs under the "ray" logger,
    which does not propagate to the root logger, so caplog misses them."""
    import logging

    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    handler.addFilter(lambda record: "DeprecationWarning" in record.getMessage())
    logging.getLogger("ray").addHandler(handler)
    try:
        yield messages
    finally:
        logging.getLogger("ray").removeHandler(handler)


def test_old_infrastructure_keys_in_training_still_work_with_one_deprecation(deprecations):
    c = MADDPGConfig().training(per_agent_learners=True, actor_lr=0.1)
    assert c.per_agent_learners is True and c.actor_lr == 0.1
    assert len(deprecations) == 1 and "learners(per_agent_learners=" in deprecations[0], deprecations
    assert "training(per_agent_learners=" in deprecations[0]
    deprecations.clear()
    c = MADDPGConfig().training(use_lockstep_sampler=False, env_runner_wait_timeout_s=5.0,
                                torch_num_threads=None, learner_resources={"CPU": 0})
    assert (c.use_lockstep_sampler, c.env_runner_wait_timeout_s, c.torch_num_threads,
            c.learner_resources) == (False, 5.0, None, {"CPU": 0})
    assert len(deprecations) == 1, deprecations
    for call in ("env_runners(use_lockstep_sampler=", "fault_tolerance(env_runner_wait_timeout_s=",
                 "framework(torch_num_threads=", "learners(learner_resources="):
        assert call in deprecations[0], (call, deprecations[0])


def test_config_dicts_take_the_moved_keys_unchanged_and_without_warnings(deprecations):
    # YAML `config:` dicts, Tune param spaces and checkpoints are flat dicts.
    c = MADDPGConfig().update_from_dict({"per_agent_learners": True, "use_lockstep_sampler": False,
                                         "env_runner_wait_timeout_s": 5.0, "torch_num_threads": 2})
    assert (c.per_agent_learners, c.use_lockstep_sampler, c.env_runner_wait_timeout_s,
            c.torch_num_threads) == (True, False, 5.0, 2)
    assert deprecations == []
    again = MADDPGConfig().update_from_dict(c.to_dict())
    assert (again.per_agent_learners, again.use_lockstep_sampler) == (True, False)


def test_the_algorithm_is_named_by_its_registration():
    from ray.tune.registry import get_trainable_cls

    from rllib_maddpg import MADDPG

    c = MADDPGConfig()
    assert c.algo_class == "MADDPG" and get_trainable_cls(c.algo_class) is MADDPG
    assert MADDPGConfig(algo_class=MADDPG).algo_class is MADDPG
    # RLlib would ask algo_class for its policy class to pick this; MADDPG sets it.
    assert c.simple_optimizer is True


def test_unknown_key_is_rejected_by_name_with_a_suggestion():
    with pytest.raises(ValueError, match=r"'actor_lrr'.*'actor_lr'"):
        MADDPGConfig().update_from_dict({"actor_lrr": 0.1})


# For every MADDPG key (training() and the infrastructure builders): settings that validate() must refuse,
# naming the key (test_config_docs checks that no key is missing here).
BAD_VALUES = {
    "actor_lr": [-1.0], "critic_lr": [0], "tau": [0.0, 1.5], "gamma": [1.2],
    "train_batch_size": [0], "env_steps_per_update": [2.5],
    "num_steps_sampled_before_learning_starts": [-1],
    "replay_buffer_config": [{"capacity": 10}, {"capacity": 10**6, "type": "x"}],
    "actor_hiddens": [[64, 0]], "critic_hiddens": ["64"],
    "actor_hidden_activation": ["swish"], "critic_hidden_activation": ["sigmoidish"],
    "grad_norm_clipping": [0.0], "grad_norm_clipping_scope": ["layer"],
    "layer_init": ["kaiming"], "independent_minibatches": [{"independent_minibatches": True, "per_agent_learners": True}], "standardize_rewards": [1], "torch_num_threads": [0],
    "actor_regularization": [-1e-3], "use_local_critic": ["yes"],
    "gumbel_softmax_temperature": [0.0], "gumbel_softmax_hard": ["no"], "gumbel_target_noise": [0],
    "simplex_box_actions": [None], "exploration_noise_scale": [-0.1],
    "exploration_noise_final_scale": [0.01, -0.5],  # 0.01: without anneal timesteps
    "exploration_noise_anneal_timesteps": [{"exploration_noise_final_scale": 0.01,
                                            "exploration_noise_anneal_timesteps": 0}],
    "store_buffer_in_checkpoints": ["yes"], "use_lockstep_sampler": [0],
    "overlap_sampling_and_learning": ["true"], "infer_other_policies": ["all"],
    "policy_inference_entropy": [-1.0], "num_subpolicies": [0],
    "ensemble_shared_draw": [["0", "1"]], "subpolicy_for_acting": [-1],
    "per_agent_learners": [1], "data_parallel_learners": [0], "shared_policy_agent_id": ["yes"], "strict_lockstep": ["yes", 1],
    "learner_resources": [{"CPU": -1}],
    "batched_update": [True, "shared", {"batched_update": "on", "per_agent_learners": True},
                       {"batched_update": "on", "twin_critics": True}],
    "sample_on_driver_when_runners_down": ["yes"], "env_runner_wait_timeout_s": [0, None],
    "twin_critics": [1], "target_action_noise": [-0.1, "0.2"], "target_action_noise_clip": [0.0],
    "actor_update_delay": [0, 1.5],
    "n_step": [0, 2.5, True],
}
BAD_CASES = [(key, value) for key, values in BAD_VALUES.items() for value in values]


@pytest.mark.parametrize("key, value", BAD_CASES, ids=[f"{k}-{i}" for i, (k, _) in enumerate(BAD_CASES)])
def test_out_of_range_values_name_the_key(key, value):
    settings = value if isinstance(value, dict) and key in value else {key: value}
    config = MADDPGConfig().environment(StampEnv).update_from_dict(settings)
    with pytest.raises(ValueError, match=key):
        config.validate()


@pytest.mark.parametrize("key, value, fix", [("lr", 0.1, "actor_lr"), ("grad_clip", 1.0, "grad_norm_clipping"),
                                             ("ignore_final_observation", True, "remove it")])
def test_rllib_keys_maddpg_does_not_read_are_refused(key, value, fix):
    config = MADDPGConfig().environment(StampEnv).update_from_dict({key: value})
    with pytest.raises(ValueError, match=fix):
        config.validate()


def test_new_api_stack_is_refused():
    config = MADDPGConfig().environment(StampEnv).api_stack(
        enable_rl_module_and_learner=True, enable_env_runner_and_connector_v2=True)
    with pytest.raises(ValueError, match="old API stack"):
        config.validate()


def test_one_policy_per_agent_in_possible_agents_order():
    config = MADDPGConfig().environment("mpe/simple_adversary")
    config.validate()
    assert [a.agent_id for a in config._maddpg_agents] == ["adversary_0", "agent_0", "agent_1"]
    assert [a.obs_dim for a in config._maddpg_agents] == [8, 10, 10]
    assert sorted(config.policies) == ["adversary_0", "agent_0", "agent_1"]
    assert config.policy_mapping_fn("agent_1") == "agent_1"
    assert config.policies["adversary_0"].observation_space.shape == (8,)


def test_survives_the_tune_round_trip_through_a_dict():
    config = MADDPGConfig().environment("mpe/simple_adversary").training(tau=0.02)
    again = MADDPGConfig().update_from_dict(config.to_dict())
    again.validate()
    assert again.tau == 0.02 and len(again._maddpg_agents) == 3
    resolved = MADDPGConfig().update_from_dict(again.to_dict())  # already resolved
    resolved.validate()
    assert resolved._maddpg_agents == again._maddpg_agents


def test_user_policies_keep_their_per_policy_config():
    config = MADDPGConfig().environment(StampEnv).multi_agent(
        policies={"0": PolicySpec(), "1": PolicySpec(config={"use_local_critic": True}), "2": PolicySpec()},
        policy_mapping_fn=lambda agent_id, *args, **kwargs: str(agent_id),
    )
    config.validate()
    assert config.policies["1"].config == {"use_local_critic": True}
    assert config.policies["0"].action_space == StampEnv().action_spaces[0]


def test_sharing_a_policy_needs_the_same_spaces():
    config = MADDPGConfig().environment(StampEnv).multi_agent(
        policies={"shared"}, policy_mapping_fn=lambda agent_id, *args, **kwargs: "shared")
    with pytest.raises(ValueError, match=r"agents 0 and 1 share policy 'shared' .*observation spaces"):
        config.validate()


def test_policy_without_agent_and_agent_without_policy_are_refused():
    config = MADDPGConfig().environment(StampEnv).multi_agent(policies={"0", "1", "2", "x"})
    with pytest.raises(ValueError, match="'x'"):
        config.validate()
    config = MADDPGConfig().environment(StampEnv).multi_agent(policies={"0", "1"})
    with pytest.raises(ValueError, match="policy '2'"):
        config.validate()


def test_unknown_local_critic_policy_is_refused():
    config = MADDPGConfig().environment(StampEnv).training(use_local_critic=["bob"])
    with pytest.raises(ValueError, match="bob"):
        config.validate()


class _TextObsEnv(StampEnv):
    def __init__(self, config=None):
        super().__init__(config)
        self.observation_spaces[1] = gym.spaces.Text(5)


class _SingleAgentEnv(gym.Env):
    observation_space = gym.spaces.Box(-1, 1, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, config=None):
        pass


@pytest.mark.parametrize("env, message", [
    (_TextObsEnv, "agent 1 has the observation space Text"),
    (_SingleAgentEnv, "needs a multi-agent env"),
])
def test_unsupported_envs_get_a_clear_error(env, message):
    with pytest.raises(ValueError, match=message):
        MADDPGConfig().environment(env).validate()


def test_old_style_native_env_and_struct_observations_resolve():
    from support import OldStyleEnv, StructObsEnv

    config = MADDPGConfig().environment(OldStyleEnv)
    config.validate()
    assert [a.agent_id for a in config._maddpg_agents] == ["a", "b"]  # sorted ids
    assert [a.obs_dim for a in config._maddpg_agents] == [3, 3]  # one-hot of the shared Discrete(3)
    config = MADDPGConfig().environment(StructObsEnv)
    config.validate()
    assert [a.obs_dim for a in config._maddpg_agents] == [2 + 3, 1 + 2 + 2]
