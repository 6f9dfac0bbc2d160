"""Parameter sharing: one policy for a group G of agents, its critic still seeing every agent.

TeamEnv's agents "a" and "b" (joint indices 0 and 1) share the policy "team";
"c" (index 2) has its own. Checked here against NumPy references and
hand-made minibatches: the shared critic's |G| x B targets (each agent's
reward, termination and id), the shared actor loss, which parameters an
update touches, agent ids in the inputs, and the errors.
"""

import numpy as np
import pytest
import torch

from rllib_maddpg import MADDPGConfig
from rllib_maddpg.core import joint as jb
from rllib_maddpg.core import update
from support import TeamEnv, build_policies, gradient_step, numpy_mlp, random_joint_batch, team_mapping

pytestmark = pytest.mark.unit


def team_policies(**overrides):
    return build_policies(TeamEnv, policies={"team", "c"}, policy_mapping_fn=team_mapping, **overrides)


def params(net):
    return [p.detach().clone() for p in net.parameters()]


def same(before, net):
    return all(torch.equal(a, b) for a, b in zip(before, net.parameters()))


def test_agents_mapped_to_one_policy_share_one_object_and_its_group():
    config, policies = team_policies(shared_policy_agent_id=True)
    assert policies[0] is policies[1] and policies[2] is not policies[0]
    team = policies[0]
    assert team.group == [0, 1] and policies[2].group == [2]
    # id_i: a one-hot over the group's 2 agents, in the actor's and the critic's inputs.
    assert team.agent_id_dim == 2 and policies[2].agent_id_dim == 0
    assert team.model.actor[0].in_features == 3 + 2
    assert team.model.critic[0].in_features == 3 * 3 + (2 + 2 + 3) + 2


@pytest.mark.parametrize("agent_ids", [False, True])
def test_shared_critic_learns_from_each_agents_reward_and_next_observation(agent_ids):
    config, policies = team_policies(gamma=0.9, shared_policy_agent_id=agent_ids)
    batch = random_joint_batch(config._maddpg_agents, batch_size=16, seed=3)
    jb.attach_target_actions(batch, policies)
    team = policies[0]
    np_batch = {k: v.numpy() for k, v in batch.items()}
    targets, values = [], []
    for position, i in enumerate((0, 1)):
        ids = np.eye(2, dtype=np.float32)[[position] * 16] if agent_ids else np.zeros((16, 0), np.float32)
        x = np.concatenate([np_batch[jb.obs_col(k)] for k in range(3)]
                           + [np_batch[jb.actions_col(k)] for k in range(3)] + [ids], -1)
        x_tp1 = np.concatenate([np_batch[jb.new_obs_col(k)] for k in range(3)]
                               + [np_batch[jb.target_actions_col(k)] for k in range(3)] + [ids], -1)
        targets.append(np_batch[jb.rewards_col(i)] + 0.9 * (1 - np_batch[jb.terminateds_col(i)])
                       * numpy_mlp(team.model.target_critic, x_tp1))
        values.append(numpy_mlp(team.model.critic, x))
    expected = np.mean((np.concatenate(values) - np.concatenate(targets)) ** 2)  # |G| x B rows
    loss, _ = update.critic_loss(team, batch)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_target_actions_come_from_each_agents_own_next_observation_and_id():
    config, policies = team_policies(shared_policy_agent_id=True)
    batch = random_joint_batch(config._maddpg_agents, seed=4)
    jb.attach_target_actions(batch, policies)
    team = policies[0]
    for position, i in enumerate((0, 1)):
        one_hot = torch.zeros(len(batch[jb.new_obs_col(i)]), 2)
        one_hot[:, position] = 1.0
        pre = team.model.target_actor(torch.cat([batch[jb.new_obs_col(i)], one_hot], -1))
        torch.testing.assert_close(batch[jb.target_actions_col(i)], torch.tanh(pre))


def test_shared_actor_loss_is_the_mean_over_the_group_with_each_agents_action_replaced():
    config, policies = team_policies(actor_regularization=0.0)
    batch = random_joint_batch(config._maddpg_agents, seed=5)
    team = policies[0]
    expected = 0.0
    for i in (0, 1):
        act_n = [batch[jb.actions_col(k)] for k in range(3)]
        act_n[i] = torch.tanh(team.model.actor(batch[jb.obs_col(i)]))
        q = team.model.critic(torch.cat([batch[jb.obs_col(k)] for k in range(3)] + act_n, -1))
        expected += -q.mean().item() / 2
    loss, _ = update.actor_loss(team, batch)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_an_update_of_the_team_changes_only_the_teams_nets():
    config, policies = team_policies(shared_policy_agent_id=True)
    batch = random_joint_batch(config._maddpg_agents)
    jb.attach_target_actions(batch, policies)
    team, other = policies[0], policies[2]
    before = {(p is team, name): params(getattr(p.model, name)) for p in (team, other)
              for name in ("actor", "critic")}
    gradient_step(team, "actor", batch)
    assert not same(before[True, "actor"], team.model.actor)
    assert same(before[True, "critic"], team.model.critic)  # gradients reach the actor only
    assert same(before[False, "actor"], other.model.actor) and same(before[False, "critic"], other.model.critic)
    gradient_step(team, "critic", batch)
    assert not same(before[True, "critic"], team.model.critic)
    assert same(before[False, "critic"], other.model.critic)


def test_a_group_of_one_is_exactly_the_unshared_policy():
    """Mapping each agent to its own named policy, with agent ids on, changes nothing:
    same inputs, same weights (same seed), the same update to float precision."""
    results = []
    for overrides in ({}, {"policies": {"a", "b", "c"}, "shared_policy_agent_id": True,
                           "policy_mapping_fn": lambda agent_id, *args, **kwargs: agent_id}):
        torch.manual_seed(0)
        config, policies = build_policies(TeamEnv, **overrides)
        batch = random_joint_batch(config._maddpg_agents, seed=6)
        jb.attach_target_actions(batch, policies)
        torch.manual_seed(1)
        stats = policies[0].learn_on_batch(batch)["learner_stats"]
        results.append((stats, [p.detach().clone() for p in policies[0].model.parameters()]))
    (stats0, weights0), (stats1, weights1) = results
    assert stats0 == pytest.approx(stats1)
    for a, b in zip(weights0, weights1):
        torch.testing.assert_close(a, b)


def test_acting_needs_the_agent_index_only_with_agent_ids():
    _, policies = team_policies(shared_policy_agent_id=True)
    team = policies[0]
    with torch.no_grad():  # make the id matter a lot
        team.model.actor[0].weight[:, 3:].fill_(5.0)
        team.model.actor[0].weight[:, 3:4].mul_(-1.0)
    obs = np.zeros((1, 3), np.float32)
    act_a = team.compute_actions_from_input_dict({"obs": obs, "agent_index": np.array([0])}, explore=False)[0]
    act_b = team.compute_actions_from_input_dict({"obs": obs, "agent_index": np.array([1])}, explore=False)[0]
    assert not np.allclose(act_a, act_b)
    with pytest.raises(ValueError, match=r"shared by agents \['a', 'b'\].*agent_index"):
        team.compute_actions_from_input_dict({"obs": obs}, explore=False)
    with pytest.raises(ValueError, match=r"joint indices \[0, 1\], not \[2\]"):
        team.compute_actions_from_input_dict({"obs": obs, "agent_index": np.array([2])}, explore=False)
    _, plain = team_policies(shared_policy_agent_id=False)
    plain[0].compute_actions_from_input_dict({"obs": obs}, explore=False)  # o_i is enough


def test_sharing_across_different_action_spaces_is_refused():
    config = MADDPGConfig().environment(TeamEnv).multi_agent(
        policies={"all"}, policy_mapping_fn=lambda agent_id, *args, **kwargs: "all")
    with pytest.raises(ValueError, match=r"agents 'a' and 'c' share policy 'all' .*action spaces"):
        config.validate()


@pytest.mark.parametrize("overrides, match", [
    ({"num_subpolicies": 2}, "policy ensemble"),
    ({"infer_other_policies": True}, "policy inference"),
    ({"use_lockstep_sampler": False}, "lockstep sampler"),
])
def test_combinations_a_shared_policy_does_not_support_are_refused(overrides, match):
    config = MADDPGConfig().environment(TeamEnv).multi_agent(
        policies={"team", "c"}, policy_mapping_fn=team_mapping)
    config.update_from_dict(overrides)
    with pytest.raises(ValueError, match=match):
        config.validate()


def test_local_critic_of_a_shared_policy_sees_own_observation_action_and_id():
    config, policies = team_policies(use_local_critic=["team"], shared_policy_agent_id=True)
    team = policies[0]
    assert team.model.critic[0].in_features == 3 + 2 + 2
    assert team.critic_agents_of(1) == [1]
    batch = random_joint_batch(config._maddpg_agents)
    jb.attach_target_actions(batch, policies)
    loss, _ = update.critic_loss(team, batch)
    assert torch.isfinite(loss)
