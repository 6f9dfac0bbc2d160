"""core/update.py: what each step of one update may change, its losses against NumPy, target actions,
policy inference, ensembles, gradient clipping."""

import numpy as np
import pytest
import torch

from rllib_maddpg.core import joint as jb
from rllib_maddpg.core import update
from support import build_policies, gradient_step, numpy_mlp, params, random_joint_batch, same

pytestmark = pytest.mark.unit


def snapshot(policies):
    return [{name: params(getattr(p.model, name)) for name in
             ("actor", "critic", "target_actor", "target_critic")} for p in policies]


def test_critic_step_changes_only_agent_i_critic():
    config, policies = build_policies()
    batch = random_joint_batch(config._maddpg_agents)
    jb.attach_target_actions(batch, policies)
    before = snapshot(policies)
    gradient_step(policies[1], "critic", batch)
    after = snapshot(policies)
    for k in range(3):
        for name in before[k]:
            changed = not all(torch.equal(a, b) for a, b in zip(before[k][name], after[k][name]))
            assert changed == (k == 1 and name == "critic"), (k, name)


def test_actor_step_changes_only_agent_i_actor():
    config, policies = build_policies()
    batch = random_joint_batch(config._maddpg_agents)
    before = snapshot(policies)
    for i in range(3):
        gradient_step(policies[i], "actor", batch)
        after = snapshot(policies)
        for k in range(3):
            for name in before[k]:
                changed = not all(torch.equal(a, b)
                                  for a, b in zip(before[k][name], after[k][name]))
                assert changed == (k == i and name == "actor"), (i, k, name)
        before = after


def test_target_update_moves_targets_by_tau():
    _, policies = build_policies(tau=0.5)
    p = policies[0]
    with torch.no_grad():
        for param in p.model.actor.parameters():
            param.add_(1.0)
    old_target = params(p.model.target_actor)
    update.soft_update_targets(p)
    for old, online, new in zip(old_target, p.model.actor.parameters(),
                                p.model.target_actor.parameters()):
        torch.testing.assert_close(new, 0.5 * old + 0.5 * online.detach())


@pytest.mark.parametrize("agent", [0, 1, 2])
def test_critic_loss_reads_agent_i_columns_like_a_numpy_reference(agent):
    config, policies = build_policies(gamma=0.9, use_local_critic=["2"])
    batch = random_joint_batch(config._maddpg_agents, batch_size=16, seed=agent)
    jb.attach_target_actions(batch, policies)
    p = policies[agent]
    seen = [agent] if agent == 2 else [0, 1, 2]
    np_batch = {k: v.numpy() for k, v in batch.items()}
    x = np.concatenate([np_batch[jb.obs_col(k)] for k in seen]
                       + [np_batch[jb.actions_col(k)] for k in seen], -1)
    x_tp1 = np.concatenate([np_batch[jb.new_obs_col(k)] for k in seen]
                           + [np_batch[jb.target_actions_col(k)] for k in seen], -1)
    y = (np_batch[jb.rewards_col(agent)] + 0.9 * (1 - np_batch[jb.terminateds_col(agent)])
         * numpy_mlp(p.model.target_critic, x_tp1))
    expected = np.mean((numpy_mlp(p.model.critic, x) - y) ** 2)
    stats = gradient_step(p, "critic", batch)
    assert stats["critic_loss"] == pytest.approx(expected, rel=1e-4)


def test_target_actions_come_from_each_agents_current_target_actor():
    config, policies = build_policies()
    batch = random_joint_batch(config._maddpg_agents)
    jb.attach_target_actions(batch, policies)
    box_before = batch[jb.target_actions_col(0)].clone()
    # Box targets are deterministic: tanh(mu'_0(o'_0)).
    expected = torch.tanh(policies[0].model.target_actor(batch[jb.new_obs_col(0)]))
    torch.testing.assert_close(box_before, expected)
    with torch.no_grad():
        for param in policies[0].model.target_actor.parameters():
            param.mul_(3.0)
    jb.attach_target_actions(batch, policies)
    assert not torch.allclose(batch[jb.target_actions_col(0)], box_before)
    # Categorical targets are relaxed one-hot samples (as in the original code).
    np.testing.assert_allclose(batch[jb.target_actions_col(1)].sum(-1).numpy(), 1.0, rtol=1e-5)
    two_heads = batch[jb.target_actions_col(2)].numpy()
    np.testing.assert_allclose(two_heads[:, :2].sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(two_heads[:, 2:].sum(-1), 1.0, rtol=1e-5)


def test_policy_inference_targets_read_only_agent_is_own_approximations():
    config, policies = build_policies(infer_other_policies=["1"])
    assert policies[1].inferred_agents == [0, 2] and policies[0].inferred_agents == []
    assert sorted(policies[1].model.approximators) == ["0", "2"]
    batch = random_joint_batch(config._maddpg_agents)
    jb.attach_target_actions(batch, policies)
    poisoned = dict(batch)
    for k in (0, 2):  # the true target actions of the others: agent 1 must not read them
        poisoned[jb.target_actions_col(k)] = torch.full_like(batch[jb.target_actions_col(k)], float("nan"))
    torch.manual_seed(0)
    clean = update.critic_target_actions(policies[1], batch)
    torch.manual_seed(0)
    dirty = update.critic_target_actions(policies[1], poisoned)
    for a, b in zip(clean, dirty):
        torch.testing.assert_close(a, b)
    assert all(torch.isfinite(a).all() for a in dirty)
    # Agent 1's own target action is its own target actor's.
    torch.testing.assert_close(dirty[1], batch[jb.target_actions_col(1)])
    # And without inference, the true target actions are used as they are.
    assert torch.isnan(update.critic_target_actions(policies[0], poisoned)[2]).all()


def test_inference_step_fits_the_approximations_only():
    config, policies = build_policies(infer_other_policies=True, actor_lr=0.05)
    batch = random_joint_batch(config._maddpg_agents)
    p = policies[0]
    before = {name: params(getattr(p.model, name)) for name in ("actor", "critic", "approximators")}
    losses_seen = [gradient_step(p, "inference", batch)["inference_loss"] for _ in range(30)]
    assert losses_seen[-1] < losses_seen[0]
    assert same(before["actor"], p.model.actor) and same(before["critic"], p.model.critic)
    assert not same(before["approximators"], p.model.approximators)
    stats = p.learn_on_batch({**batch, **{jb.target_actions_col(k): batch[jb.actions_col(k)] for k in range(3)}})
    assert {"inference_action_error/1", "inference_action_error/2"} <= set(stats["learner_stats"])


def test_ensemble_sub_policy_k_learns_only_from_its_own_minibatch():
    config, policies = build_policies(num_subpolicies=3)
    p = policies[0]
    assert len(p.model.actors) == 3 and len(p.model.target_actors) == 3
    batch = random_joint_batch(config._maddpg_agents)
    before = [params(actor) for actor in p.model.actors]
    gradient_step(p, "actor", batch, actor_batches={1: random_joint_batch(config._maddpg_agents, seed=3)})
    changed = [not same(b, actor) for b, actor in zip(before, p.model.actors)]
    assert changed == [False, True, False]


def test_gradient_clipping_per_variable_and_per_network():
    from rllib_maddpg.core.update import clip_gradients

    def grads():
        return [torch.tensor([3.0, 4.0]), torch.tensor([0.3, 0.4]), torch.tensor([0.0, 12.0])]

    total = np.sqrt(25 + 0.25 + 144)
    g = grads()
    assert clip_gradients(g, 0.5, "variable") == pytest.approx(total)
    # tf.clip_by_norm on each tensor: g * 0.5 / max(|g|, 0.5).
    np.testing.assert_allclose(g[0].numpy(), [0.3, 0.4], rtol=1e-6)
    np.testing.assert_allclose(g[1].numpy(), [0.3, 0.4], rtol=1e-6)  # norm 0.5: unchanged
    np.testing.assert_allclose(g[2].numpy(), [0.0, 0.5], rtol=1e-6)
    g = grads()
    clip_gradients(g, 0.5, "network")  # one factor 0.5 / total for all
    np.testing.assert_allclose(g[0].numpy(), np.array([3, 4]) * 0.5 / total, rtol=1e-5)
    np.testing.assert_allclose(g[1].numpy(), np.array([0.3, 0.4]) * 0.5 / total, rtol=1e-5)
    g = grads()
    assert clip_gradients(g, None, "variable") == pytest.approx(total)
    np.testing.assert_array_equal(g[0].numpy(), [3.0, 4.0])
