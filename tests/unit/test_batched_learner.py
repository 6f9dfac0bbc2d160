"""batched_learner.py: which setups the batched learner takes, and that on RLlib's
policies it equals their own per-agent updates (float64), writes their weights in
place and hands Adam's state back to them."""

import numpy as np
import pytest
import torch

from rllib_maddpg.batched_learner import BatchedLearner, config_refusal, refusal
from rllib_maddpg.core import joint as jb
from support import StampEnv, TeamEnv, build_policies, random_joint_batch

pytestmark = pytest.mark.unit

SPREAD = dict(env="mpe/simple_spread", env_config={"N": 3})


@pytest.mark.parametrize("overrides, reason", [
    (dict(env=StampEnv), "differ in their observation or action spaces"),
    (dict(env=TeamEnv, policies={"team", "c"},
          policy_mapping_fn=lambda a, *args, **kw: "c" if a == "c" else "team"), "shared by several agents"),
    (dict(SPREAD, use_local_critic=True), "local critic"),
    (dict(SPREAD, infer_other_policies=True), "infers the other policies"),
    (dict(SPREAD, num_subpolicies=2), "policy ensemble"),
    (dict(SPREAD, twin_critics=True), "MATD3"),
    (dict(SPREAD, actor_update_delay=2), "MATD3"),
    (dict(SPREAD, target_action_noise=0.2), "MATD3"),
    (dict(env=StampEnv, strict_lockstep=False), "agents come and go"),
])
def test_setups_it_cannot_batch_are_named(overrides, reason):
    _, policies = build_policies(**overrides)
    assert reason in refusal(policies)
    with pytest.raises(ValueError, match=reason):
        BatchedLearner(policies)


def test_policies_that_differ_in_a_setting_or_adam_step_are_refused():
    _, policies = build_policies(**SPREAD)
    assert refusal(policies) is None
    policies[2].config["critic_lr"] = 1e-3
    assert "differ in critic_lr" in refusal(policies)
    _, policies = build_policies(**SPREAD)
    batch = _batch(policies)
    jb.attach_target_actions(batch, policies)
    policies[1].learn_on_batch(batch)  # one agent a step ahead
    assert "different Adam steps" in refusal(policies)


@pytest.mark.parametrize("overrides, reason", [
    (dict(per_agent_learners=True), "Ray learner actors"),
    (dict(data_parallel_learners=2), "Ray learner actors"),
    (dict(independent_minibatches=True), "independent_minibatches"),
    (dict(twin_critics=True), "MATD3"),
])
def test_config_setups_it_cannot_batch_are_named(overrides, reason):
    config, _ = build_policies(**SPREAD)
    assert config_refusal(config) is None
    assert reason in config_refusal(config.update_from_dict(overrides))


def _batch(policies, seed=0):
    batch = random_joint_batch([p.agents[p.agent_index] for p in policies], batch_size=64, seed=seed)
    return {k: v.to(torch.get_default_dtype()) for k, v in batch.items()}


def _weights(policies):
    return [p.get_weights() for p in policies]


# float64: the paths sum in different orders (~1e-16), and Adam's first steps, about
# lr * sign(g), move a weight whose gradient is about 0 by up to lr on such noise:
# differences of 1e-12 were seen after 3 rounds; a wrong update differs by > 1e-4.
ATOL = 1e-9


def _assert_close(a, b, atol=ATOL):
    for wa, wb in zip(a, b):
        assert wa.keys() == wb.keys()
        for key in wa:
            np.testing.assert_allclose(wa[key], wb[key], rtol=0, atol=atol, err_msg=key)


@pytest.mark.parametrize("overrides", [
    SPREAD,  # Gumbel-Softmax on MPE's simplex actions, the same noise in both paths
    dict(SPREAD, grad_norm_clipping_scope="network", critic_hidden_activation="tanh"),
    dict(SPREAD, simplex_box_actions=False, actor_hidden_activation="elu"),  # tanh Box actions
])
def test_batched_learner_equals_the_policies_own_updates_and_hands_adam_state_back(float64, overrides):
    torch.manual_seed(0)
    _, loop = build_policies(**overrides)
    torch.manual_seed(0)
    _, batched = build_policies(**overrides)
    _assert_close(_weights(loop), _weights(batched), 0)
    learner = BatchedLearner(batched)
    for r in range(3):
        batch = _batch(loop, seed=r)
        torch.manual_seed(r)
        loop_batch = dict(batch)
        jb.attach_target_actions(loop_batch, loop)
        expected = {p.config["__policy_id"]: p.learn_on_batch(loop_batch) for p in loop}
        torch.manual_seed(r)
        got = learner.update(batch)
        assert got.keys() == expected.keys()
        for pid in got:
            assert list(got[pid]["learner_stats"]) == list(expected[pid]["learner_stats"])
            for name, value in expected[pid]["learner_stats"].items():
                assert got[pid]["learner_stats"][name] == pytest.approx(value, rel=1e-9, abs=1e-12), (r, pid, name)
        # The policies' own weights moved: they are views of the stacks.
        _assert_close(_weights(loop), _weights(batched))
    assert [p.num_grad_updates for p in batched] == [3, 3, 3]
    # Adam's state back into the policies: their own updates continue as the loop's.
    learner.save_optimizer_states()
    for r in range(3, 5):
        batch = _batch(loop, seed=r)
        for policies in (loop, batched):
            torch.manual_seed(r)
            b = dict(batch)
            jb.attach_target_actions(b, policies)
            for p in policies:
                p.learn_on_batch(b)
    _assert_close(_weights(loop), _weights(batched))


def test_weights_written_in_place_stay_shared_and_replaced_ones_are_noticed():
    _, policies = build_policies(**SPREAD)
    learner = BatchedLearner(policies)
    assert learner.acts_for(policies)
    weights = policies[1].get_weights()
    weights = {k: np.full_like(v, 0.5) for k, v in weights.items()}
    policies[1].set_weights(weights)  # RLlib's set_weights: load_state_dict, in place
    assert learner.acts_for(policies)
    assert torch.all(learner.batched.critic[0][1] == 0.5) and torch.all(learner.batched.target_actor[0][1] == 0.5)
    assert not learner.acts_for(list(reversed(policies)))
    policies[0].model.critic[0].weight.data = policies[0].model.critic[0].weight.data.clone()
    assert not learner.acts_for(policies)
