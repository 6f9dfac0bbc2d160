"""MATD3 (Ackermann et al. 2019) as options of core/update.py: twin critics and the min
in their target, target policy smoothing of Box actions, delayed actor updates; and
MADDPG unchanged when they are off."""

import numpy as np
import pytest
import torch

from rllib_maddpg.core import joint as jb
from rllib_maddpg.core import losses, update
from support import build_policies, gradient_step, numpy_mlp, params, random_joint_batch, same

pytestmark = pytest.mark.unit

MATD3 = {"twin_critics": True, "target_action_noise": 0.2, "actor_update_delay": 2}


@pytest.mark.parametrize("agent", [0, 1, 2])
def test_twin_critic_loss_is_both_critics_on_the_min_target_like_a_numpy_reference(agent):
    config, policies = build_policies(gamma=0.9, twin_critics=True, use_local_critic=["2"])
    batch = random_joint_batch(config._maddpg_agents, batch_size=16, seed=agent)
    jb.attach_target_actions(batch, policies)
    p = policies[agent]
    seen = [agent] if agent == 2 else [0, 1, 2]
    b = {k: v.numpy() for k, v in batch.items()}
    x = np.concatenate([b[jb.obs_col(k)] for k in seen] + [b[jb.actions_col(k)] for k in seen], -1)
    x_tp1 = np.concatenate([b[jb.new_obs_col(k)] for k in seen]
                           + [b[jb.target_actions_col(k)] for k in seen], -1)
    target_q1, target_q2 = numpy_mlp(p.model.target_critic, x_tp1), numpy_mlp(p.model.target_critic_2, x_tp1)
    assert not np.allclose(target_q1, target_q2)  # two independently initialised critics
    y = b[jb.rewards_col(agent)] + 0.9 * (1 - b[jb.terminateds_col(agent)]) * np.minimum(target_q1, target_q2)
    expected = (np.mean((numpy_mlp(p.model.critic, x) - y) ** 2)
                + np.mean((numpy_mlp(p.model.critic_2, x) - y) ** 2))
    before = {name: params(getattr(p.model, name)) for name in ("critic", "critic_2", "actor")}
    stats = gradient_step(p, "critic", batch)
    assert stats["critic_loss"] == pytest.approx(expected, rel=1e-4)
    # One optimizer step moves both critics, not the actor.
    assert not same(before["critic"], p.model.critic) and not same(before["critic_2"], p.model.critic_2)
    assert same(before["actor"], p.model.actor)


def test_twin_critic_target_takes_the_elementwise_min():
    r, d = torch.tensor([1.0, 1.0, 2.0]), torch.tensor([0.0, 1.0, 0.0])
    q1, q2 = torch.tensor([3.0, 5.0, -1.0]), torch.tensor([4.0, -2.0, -3.0])
    torch.testing.assert_close(losses.twin_critic_target(r, d, q1, q2, 0.5), torch.tensor([2.5, 1.0, 0.5]))


def test_twin_critics_and_their_optimizer_only_when_asked():
    _, (plain, *_) = build_policies()
    _, (twin, *_) = build_policies(twin_critics=True)
    assert not any(k.startswith(("critic_2", "target_critic_2")) for k in plain.get_weights())
    assert {k.split(".")[0] for k in twin.get_weights()} >= {"critic_2", "target_critic_2"}
    critic_opt = twin.optimizers["critic"].param_groups[0]["params"]
    assert len(critic_opt) == len(params(twin.model.critic)) + len(params(twin.model.critic_2))
    # The actor ascends Q^1 only: Q^2 gets no gradient from the actor loss.
    batch = random_joint_batch(twin.agents)
    loss, _ = update.actor_loss(twin, batch)
    loss.backward()
    assert all(p.grad is None for p in twin.model.critic_2.parameters())


def test_target_policy_smoothing_noise_is_clipped_and_absent_at_sigma_zero():
    action = torch.zeros(20000, 2)
    torch.manual_seed(0)
    smoothed = losses.smoothed_target_action(action, 1.0, 0.3)
    assert smoothed.abs().max() <= 0.3 + 1e-7 and (smoothed.abs() == 0.3).float().mean() > 0.5
    near_edge = losses.smoothed_target_action(torch.full((1000, 2), 0.9), 1.0, 0.5)
    assert near_edge.max() <= 1.0 and near_edge.min() >= 0.4 - 1e-6
    state = torch.get_rng_state()
    assert losses.smoothed_target_action(action, 0.0, 0.5) is action
    assert torch.equal(torch.get_rng_state(), state)  # sigma 0 draws no random numbers


def test_smoothing_applies_to_box_target_actions_only():
    config, plain = build_policies()
    _, smoothed = build_policies(target_action_noise=0.2, target_action_noise_clip=0.1)
    for a, b in zip(plain, smoothed):
        b.set_weights(a.get_weights())
    batch = random_joint_batch(config._maddpg_agents)
    torch.manual_seed(0)
    jb.attach_target_actions(batch, plain)
    expected = {k: batch[jb.target_actions_col(k)].clone() for k in range(3)}
    torch.manual_seed(0)
    jb.attach_target_actions(batch, smoothed)
    got = {k: batch[jb.target_actions_col(k)] for k in range(3)}
    # Agent 0's Box action: moved by at most c, within [-1, 1].
    difference = (got[0] - expected[0]).abs()
    assert difference.max() <= 0.1 + 1e-6 and difference.mean() > 0.01
    assert got[0].abs().max() <= 1.0
    # Agents 1 and 2 (Discrete, MultiDiscrete): the same Gumbel-Softmax samples
    # (each drawn from the same seed: agent 0's smoothing above used random numbers).
    for k in (1, 2):
        actions = []
        for policies in (plain, smoothed):
            torch.manual_seed(k)
            actions.append(policies[k].target_actions(batch[jb.new_obs_col(k)], agent=k))
        torch.testing.assert_close(actions[0], actions[1], rtol=0, atol=0)


def test_defaults_update_exactly_as_maddpg_did():
    """A policy built without the MATD3 keys and one built with their defaults given
    explicitly make bit-identical updates from the same weights and minibatch."""
    config, before = build_policies()
    _, explicit = build_policies(twin_critics=False, target_action_noise=0.0,
                                 target_action_noise_clip=0.5, actor_update_delay=1)
    for a, b in zip(before, explicit):
        b.set_weights(a.get_weights())
    batch = random_joint_batch(config._maddpg_agents, seed=3)
    results = []
    for policies in (before, explicit):
        torch.manual_seed(0)
        b = {k: v.clone() for k, v in batch.items()}
        jb.attach_target_actions(b, policies)
        stats = [policies[k].learn_on_batch(b)["learner_stats"] for k in range(3)]
        results.append((stats, [p.get_weights() for p in policies]))
    assert results[0][0] == results[1][0]
    for w0, w1 in zip(results[0][1], results[1][1]):
        assert w0.keys() == w1.keys()
        for key in w0:
            np.testing.assert_array_equal(w0[key], w1[key], err_msg=key)
    # And the default policy's own stats name the plain MADDPG update.
    assert "q2_mean" not in results[0][0][0] and "actor_loss" in results[0][0][0]


@pytest.mark.parametrize("twin", [False, True])
def test_actor_and_targets_change_only_every_dth_update_the_critic_every_time(twin):
    config, policies = build_policies(actor_update_delay=3, twin_critics=twin)
    p = policies[0]
    batch = random_joint_batch(config._maddpg_agents)
    jb.attach_target_actions(batch, policies)
    nets = ["actor", "target_actor", "critic", "target_critic"] + (["critic_2", "target_critic_2"] if twin else [])
    for n in range(1, 7):
        before = {name: params(getattr(p.model, name)) for name in nets}
        stats = p.learn_on_batch(dict(batch))["learner_stats"]
        changed = {name: not same(before[name], getattr(p.model, name)) for name in nets}
        due = n % 3 == 0
        assert changed["critic"] and changed.get("critic_2", True), n
        assert changed["actor"] == changed["target_actor"] == changed["target_critic"] == due, (n, changed)
        assert ("actor_loss" in stats) == due
        if twin:
            assert changed["target_critic_2"] == due


def test_twin_critic_policy_survives_a_checkpoint_round_trip():
    config, policies = build_policies(**MATD3)
    p = policies[0]
    batch = random_joint_batch(config._maddpg_agents)
    jb.attach_target_actions(batch, policies)
    for _ in range(3):
        p.learn_on_batch(dict(batch))
    state = p.get_state()
    _, (restored, *_) = build_policies(**MATD3)
    assert not same(params(p.model.critic_2), restored.model.critic_2)
    restored.set_state(state)
    for name in ("critic", "critic_2", "target_critic", "target_critic_2", "actor"):
        for a, b in zip(getattr(p.model, name).parameters(), getattr(restored.model, name).parameters()):
            torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    # The delay keeps its phase: 3 updates done, so the 4th steps the actor (d = 2).
    assert restored.num_grad_updates == 3
    torch.manual_seed(0)
    a = p.learn_on_batch(dict(batch))["learner_stats"]
    torch.manual_seed(0)
    b = restored.learn_on_batch(dict(batch))["learner_stats"]
    assert a == b and "actor_loss" in a
    # Both critics' optimizer state (Adam moments) came along too: the same step lands on the same weights.
    for name in p.model.critic_names:
        for x, y in zip(getattr(p.model, name).parameters(), getattr(restored.model, name).parameters()):
            torch.testing.assert_close(x, y, rtol=0, atol=0, msg=name)


def test_twin_critics_with_masked_critics_read_the_alive_flags():
    from support import ComeAndGoEnv

    config, policies = build_policies(ComeAndGoEnv, twin_critics=True)
    assert config._maddpg_masked
    batch = random_joint_batch(config._maddpg_agents, batch_size=16)
    batch[jb.alive_col(0)][:8] = 0.0  # agent 0 absent from half the rows
    jb.attach_target_actions(batch, policies, masked=True)
    p = policies[0]
    loss, _ = update.critic_loss(p, batch)
    # Rows where agent 0 is absent do not count: poisoning its reward there changes nothing.
    poisoned = dict(batch)
    poisoned[jb.rewards_col(0)] = batch[jb.rewards_col(0)].clone()
    poisoned[jb.rewards_col(0)][:8] = 1e6
    torch.testing.assert_close(update.critic_loss(p, poisoned)[0], loss)
    stats = p.learn_on_batch(dict(batch))["learner_stats"]
    assert np.isfinite(stats["critic_loss"]) and "q2_mean" in stats


@pytest.mark.parametrize("extra", [
    {"env": "team", "shared_policy_agent_id": True},       # parameter sharing
    {"infer_other_policies": True},                          # policy inference (paper 4.2)
    {"num_subpolicies": 2},                                  # policy ensembles (paper 4.3)
], ids=["sharing", "inference", "ensembles"])
def test_matd3_combines_with_the_papers_extras(extra):
    """MATD3 (twin critics, smoothing, delay 2) with sharing, inference and
    ensembles: every update step runs and both critics learn."""
    from support import TeamEnv, team_mapping

    extra = dict(extra)
    matd3 = {"twin_critics": True, "target_action_noise": 0.2, "actor_update_delay": 2}
    if extra.pop("env", None) == "team":
        config, policies = build_policies(TeamEnv, policies={"team", "c"},
                                          policy_mapping_fn=team_mapping, **matd3, **extra)
    else:
        config, policies = build_policies(**matd3, **extra)
    batch = random_joint_batch(config._maddpg_agents, batch_size=32, seed=1)
    for k in range(len(config._maddpg_agents)):  # valid sub-policy indices (ensembles of K = 2)
        batch[jb.subpolicy_col(k)] = torch.arange(32) % 2
    jb.attach_target_actions(batch, policies)
    learners = list({id(p): p for p in policies}.values())
    for learner in learners:
        critics = params(learner.model.critic), params(learner.model.critic_2)
        actor_batches = ({k: random_joint_batch(config._maddpg_agents, 32, seed=2 + k) for k in range(2)}
                         if learner.num_subpolicies > 1 else None)
        for _ in range(2):
            stats = update.update_agent(learner, batch, actor_batches)
            learner.num_grad_updates += 1
        assert np.isfinite(stats["critic_loss"]) and "actor_loss" in stats
        assert not same(critics[0], learner.model.critic) and not same(critics[1], learner.model.critic_2)
