"""MADDPGTorchPolicy: network sizes, acting (decentralized execution), critic weights, initialisation, threads."""

import numpy as np
import pytest
import torch

from rllib_maddpg.core import joint as jb
from rllib_maddpg.policy import MADDPGTorchPolicy
from support import OBS_DIMS, build_policies, params, same

pytestmark = pytest.mark.unit

# StampEnv's agents: Box(2) -> 2 critic inputs, Discrete(3) -> 3, MultiDiscrete([2, 3]) -> 5.
ACTION_DIMS = (2, 3, 5)


def _linears(module):
    return [m for m in module.modules() if isinstance(m, torch.nn.Linear)]


def test_centralized_critic_sees_every_agent_and_local_critic_only_its_own():
    config, policies = build_policies(use_local_critic=["1"])
    assert [a.policy_id for a in config._maddpg_agents] == ["0", "1", "2"]
    assert [a.obs_dim for a in config._maddpg_agents] == list(OBS_DIMS)
    assert [a.action_dim for a in config._maddpg_agents] == list(ACTION_DIMS)
    joint_in = sum(OBS_DIMS) + sum(ACTION_DIMS)
    first_layer = [p.model.critic[0].in_features for p in policies]
    assert first_layer == [joint_in, OBS_DIMS[1] + ACTION_DIMS[1], joint_in]
    assert [p.model.actor[0].in_features for p in policies] == list(OBS_DIMS)
    assert isinstance(policies[0], MADDPGTorchPolicy)


def test_actions_fit_the_env_and_the_critic():
    _, policies = build_policies()
    obs = {k: np.random.default_rng(k).normal(size=(6, d)).astype(np.float32)
           for k, d in enumerate(OBS_DIMS)}
    for k, policy in enumerate(policies):
        for explore in (True, False):
            actions, _, extra = policy.compute_actions_from_input_dict(
                {"obs": obs[k]}, explore=explore)
            critic_action = extra[jb.CRITIC_ACTION]
            assert critic_action.shape == (6, ACTION_DIMS[k])
            assert all(policy.action_space.contains(a) for a in actions), (k, actions)
    # Deterministic without exploration; one-hot for categorical heads.
    a1 = policies[1].compute_actions_from_input_dict({"obs": obs[1]}, explore=False)
    a2 = policies[1].compute_actions_from_input_dict({"obs": obs[1]}, explore=False)
    np.testing.assert_array_equal(a1[0], a2[0])
    np.testing.assert_array_equal(a1[2][jb.CRITIC_ACTION].sum(-1), 1.0)
    np.testing.assert_array_equal(a1[2][jb.CRITIC_ACTION].argmax(-1), a1[0])


def test_box_action_is_rescaled_to_bounds_and_noise_anneals():
    _, policies = build_policies(
        exploration_noise_scale=0.5, exploration_noise_final_scale=0.1,
        exploration_noise_anneal_timesteps=1000,
    )
    box = policies[0]
    assert box.exploration_noise_scale(0) == pytest.approx(0.5)
    assert box.exploration_noise_scale(500) == pytest.approx(0.3)
    assert box.exploration_noise_scale(10**6) == pytest.approx(0.1)
    obs = np.zeros((4, OBS_DIMS[0]), np.float32)
    actions, _, extra = box.compute_actions_from_input_dict({"obs": obs}, explore=False)
    # Env action in [-2, 2] is the critic's [-1, 1] action rescaled.
    np.testing.assert_allclose(actions, 2.0 * extra[jb.CRITIC_ACTION], rtol=1e-5)


def test_critic_weights_copy_moves_only_the_critics():
    _, source = build_policies()
    _, target = build_policies()
    with torch.no_grad():
        for param in source[0].model.critic.parameters():
            param.add_(1.0)
    actor_before = params(target[0].model.actor)
    target[0].set_critic_weights(source[0].get_critic_weights())
    for a, b in zip(source[0].model.critic.parameters(), target[0].model.critic.parameters()):
        assert torch.equal(a, b)
    for a, b in zip(source[0].model.target_critic.parameters(), target[0].model.target_critic.parameters()):
        assert torch.equal(a, b)
    assert same(actor_before, target[0].model.actor)


def test_ensemble_acts_with_the_sub_policy_of_each_row():
    _, policies = build_policies(num_subpolicies=2)
    p = policies[0]
    with torch.no_grad():
        for param in p.model.actors[1].parameters():
            param.add_(1.0)
    obs = np.ones((4, OBS_DIMS[0]), np.float32)
    a0 = p.compute_actions_from_input_dict({"obs": obs, jb.SUBPOLICY: np.zeros(4)}, explore=False)[0]
    a1 = p.compute_actions_from_input_dict({"obs": obs, jb.SUBPOLICY: np.ones(4)}, explore=False)[0]
    mixed = p.compute_actions_from_input_dict({"obs": obs, jb.SUBPOLICY: np.array([0, 1, 0, 1])},
                                              explore=False)[0]
    assert not np.allclose(a0, a1)
    np.testing.assert_allclose(mixed, np.stack([a0[0], a1[1], a0[2], a1[3]]), rtol=1e-6)
    # Target actions follow the stored sub-policy index too.
    t = p.target_actions(torch.ones(2, OBS_DIMS[0]), torch.tensor([0, 1]))
    assert not torch.allclose(t[0], t[1])


def test_layers_start_glorot_uniform_with_zero_biases_as_the_original():
    _, policies = build_policies(infer_other_policies=True)
    for p in policies:
        nets = [p.model.actor, p.model.critic, p.model.approximators]
        layers = [layer for net in nets for layer in _linears(net)]
        assert len(layers) >= 6
        for layer in layers:
            fan_out, fan_in = layer.weight.shape
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            w = layer.weight.detach().numpy()
            assert np.abs(w).max() <= limit
            # Uniform on [-limit, limit]: std limit / sqrt(3). Torch's default
            # has a std of limit / sqrt(3) * about 0.5, and nonzero biases.
            assert abs(w.std() / (limit / np.sqrt(3)) - 1) < 0.25
            assert torch.count_nonzero(layer.bias) == 0
        # The targets start as exact copies.
        for net, target in ((p.model.actor, p.model.target_actor), (p.model.critic, p.model.target_critic)):
            assert all(torch.equal(a, b) for a, b in zip(net.parameters(), target.parameters()))


def test_torch_default_init_is_kept_as_an_option():
    _, policies = build_policies(layer_init="torch_default")
    biases = [layer.bias for layer in _linears(policies[0].model.critic)]
    assert all(torch.count_nonzero(b) > 0 for b in biases)


def test_policy_sets_the_configured_torch_threads():
    before = torch.get_num_threads()
    try:
        build_policies(torch_num_threads=2)
        assert torch.get_num_threads() == 2
        torch.set_num_threads(3)
        build_policies(torch_num_threads=None)  # leaves it alone
        assert torch.get_num_threads() == 3
        build_policies()
        assert torch.get_num_threads() == 1  # the default
    finally:
        torch.set_num_threads(before)
