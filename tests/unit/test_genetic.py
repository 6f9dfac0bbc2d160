"""Genetic MADDPG without Ray: the sync rule on policies, the metric, the config."""

import math
import subprocess
import sys

import pytest
import torch

from rllib_maddpg.genetic import (
    GeneticMADDPG,
    GeneticMADDPGConfig,
    best_member,
    critic_sync,
    get_critic_weights,
    read_metric,
    set_critic_weights,
)
from support import StampEnv, build_policies

pytestmark = pytest.mark.unit

NETS = ("actor", "critic", "target_actor", "target_critic")


def population(size):
    """`size` members, each {policy id: policy} for StampEnv's three agents, all different."""
    members = []
    for seed in range(size):
        torch.manual_seed(seed)
        config, policies = build_policies()
        for policy in policies:
            # Make Q'_i differ from Q_i, so copying the wrong one would show.
            with torch.no_grad():
                for p in policy.model.target_critic.parameters():
                    p.add_(torch.randn_like(p))
        members.append({a.policy_id: p for a, p in zip(config._maddpg_agents, policies)})
    return members


def snapshot(member):
    return {pid: {net: [p.detach().clone() for p in getattr(policy.model, net).parameters()]
                  for net in NETS} for pid, policy in member.items()}


def same(a, b):
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


def sync(members, metrics):
    return critic_sync(
        metrics,
        lambda i: get_critic_weights(members[i]),
        lambda i, weights: set_critic_weights(members[i], weights),
    )


@pytest.mark.parametrize("metrics, best", [
    ([1.0, 5.0, 3.0], 1),
    ([-4.0, -2.0], 1),
    ([2.0, 2.0, 1.0], 0),                       # ties: the lowest index
    ([float("nan"), 1.0, float("nan")], 1),     # no episode finished yet: not a candidate
    ([float("nan"), float("nan")], None),
    ([float("-inf"), 0.5], 1),
])
def test_best_member_is_the_largest_finite_metric(metrics, best):
    assert best_member(metrics) == best


def test_after_a_sync_every_member_has_the_best_critics_and_its_own_actors():
    members = population(3)
    before = [snapshot(m) for m in members]
    pids = list(members[0])
    # Different random inits: otherwise the test could not tell a copy from no copy.
    assert not same(before[0][pids[0]]["critic"], before[1][pids[0]]["critic"])

    assert sync(members, [1.0, 7.0, 3.0]) == 1
    after = [snapshot(m) for m in members]
    for pid in pids:
        for i in (0, 2):
            assert same(after[i][pid]["critic"], before[1][pid]["critic"])
            assert same(after[i][pid]["target_critic"], before[1][pid]["target_critic"])
            assert same(after[i][pid]["actor"], before[i][pid]["actor"])
            assert same(after[i][pid]["target_actor"], before[i][pid]["target_actor"])
        for net in NETS:  # the best member is not touched
            assert same(after[1][pid][net], before[1][pid][net])


def test_synced_critics_are_copies_not_shared_tensors():
    members = population(2)
    sync(members, [0.0, 1.0])
    pid = next(iter(members[0]))
    best_critic = [p.detach().clone() for p in members[1][pid].model.critic.parameters()]
    with torch.no_grad():
        for p in members[0][pid].model.critic.parameters():
            p.add_(1.0)
    assert same(best_critic, list(members[1][pid].model.critic.parameters()))


def test_no_sync_before_any_episode_finished():
    members = population(2)
    before = [snapshot(m) for m in members]
    calls = []
    best = critic_sync([float("nan")] * 2, lambda i: calls.append(i), lambda i, w: calls.append(i))
    assert best is None and calls == []
    assert all(same(b[pid][net], a[pid][net]) for b, a in zip(before, map(snapshot, members))
               for pid in b for net in NETS)


def test_copying_between_different_policy_sets_names_the_problem():
    members = population(2)
    weights = get_critic_weights(members[0])
    weights.pop(next(iter(weights)))
    with pytest.raises(ValueError, match="same env"):
        set_critic_weights(members[1], weights)


def test_the_metric_is_the_team_total_or_one_policy_return():
    result = {"env_runners": {"episode_return_mean": 3.5,
                              "policy_reward_mean": {"adversary_0": 12.0, "agent_0": -30.0}}}
    assert read_metric(result, "episode_return_mean") == 3.5
    assert read_metric(result, "policy_reward_mean/adversary_0") == 12.0
    assert math.isnan(read_metric({"env_runners": {}}, "episode_return_mean"))
    assert math.isnan(read_metric(result, "policy_reward_mean/agent_9"))


# --- config ----------------------------------------------------------------------


def test_defaults_and_training_builder():
    c = GeneticMADDPGConfig()
    assert (c.population_size, c.critic_sync_interval, c.sync_metric) == (
        2, 5000, "episode_return_mean")
    assert c.member_resources == {"CPU": 1} and c.placement_strategy == "PACK"
    assert c.algo_class is GeneticMADDPG
    c.training(population_size=4, critic_sync_interval=None, actor_lr=1e-3,
               sync_metric="policy_reward_mean/0", member_resources={"CPU": 0.5, "node_b": 1})
    assert (c.population_size, c.critic_sync_interval, c.actor_lr) == (4, None, 1e-3)
    assert c.member_resources == {"CPU": 0.5, "node_b": 1}
    c.environment(StampEnv).validate()


@pytest.mark.parametrize("key, value, match", [
    ("population_size", 1, "population_size"),
    ("population_size", 2.0, "population_size"),
    ("critic_sync_interval", 0, "critic_sync_interval"),
    ("critic_sync_interval", 2.5, "critic_sync_interval"),
    ("sync_metric", "episode_reward_max", "sync_metric"),
    ("sync_metric", "policy_reward_mean/7", "names no policy"),
    ("member_resources", {"CPU": -1}, "member_resources"),
    ("member_resources", 1, "member_resources"),
    ("member_resources", {"CPU": 0}, "reserves nothing"),
    ("placement_strategy", "ANYWHERE", "placement_strategy"),
    ("tau", 0.0, "tau"),  # the base MADDPG checks still apply
])
def test_bad_values_name_the_key(key, value, match):
    config = GeneticMADDPGConfig().environment(StampEnv).update_from_dict({key: value})
    with pytest.raises(ValueError, match=match):
        config.validate()


def test_unknown_key_is_rejected_with_a_suggestion():
    with pytest.raises(ValueError, match=r"'population_sise'.*'population_size'"):
        GeneticMADDPGConfig().update_from_dict({"population_sise": 3})


def test_members_get_the_base_config_and_consecutive_seeds():
    c = (GeneticMADDPGConfig().environment(StampEnv).debugging(seed=10)
         .training(population_size=3, tau=0.05))
    dicts = [c.member_config_dict(i) for i in range(3)]
    assert [d["seed"] for d in dicts] == [10, 11, 12]
    assert all(d["tau"] == 0.05 and "population_size" not in d for d in dicts)
    assert GeneticMADDPGConfig().member_config_dict(1)["seed"] is None


def test_resource_request_reserves_each_member_and_its_env_runners():
    c = GeneticMADDPGConfig().training(population_size=3, member_resources={"CPU": 1, "node_b": 1},
                                       placement_strategy="SPREAD")
    request = GeneticMADDPG.default_resource_request(c.to_dict())
    assert request.head_bundle_is_empty  # the coordinating trainable needs no CPU
    assert request.bundles == [{"CPU": 1.0, "node_b": 1.0}] * 3
    assert request.strategy == "SPREAD"
    c.env_runners(num_env_runners=1)
    request = GeneticMADDPG.default_resource_request(c)
    assert request.bundles == [{"CPU": 1.0, "node_b": 1.0}, {"CPU": 1.0}] * 3
    # A label keeps the coordinating trainable on one node (e.g. the head, with the results).
    c.resources(custom_resources_for_main_process={"learner_node": 1})
    request = GeneticMADDPG.default_resource_request(c)
    assert not request.head_bundle_is_empty
    assert request.bundles[0] == {"learner_node": 1.0} and len(request.bundles) == 7


def test_genetic_is_reachable_by_name_and_attribute_without_an_import():
    # A fresh process, so that nothing imported rllib_maddpg.genetic before.
    code = (
        "import sys, rllib_maddpg\n"
        "from ray.tune.registry import get_trainable_cls\n"
        "cls = get_trainable_cls('GeneticMADDPG')\n"
        "import rllib_maddpg.genetic as g\n"
        "assert cls is g.GeneticMADDPG is rllib_maddpg.GeneticMADDPG, cls\n"
        "from rllib_maddpg import GeneticMADDPGConfig\n"
        "assert GeneticMADDPGConfig is g.population.GeneticMADDPGConfig\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
