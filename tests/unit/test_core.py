"""core/ is MADDPG without RLlib: its modules import no Ray and no adapter module,
and one update runs on a learner made of plain torch modules and optimizers,
equal to the RLlib policy's update on the same weights and minibatch."""

import ast
import os

import numpy as np
import pytest
import torch

from rllib_maddpg.core import joint as jb
from rllib_maddpg.core import update
from plain_learner import PlainLearner
from support import ACTION_SPACES, build_policies, random_joint_batch

pytestmark = pytest.mark.unit

CORE = os.path.join(os.path.dirname(__file__), "..", "..", "rllib_maddpg", "core")


def imported_modules(path):
    with open(path) as f:
        tree = ast.parse(f.read())
    for node in ast.walk(tree):  # module level and inside functions
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


def test_core_imports_neither_ray_nor_the_adapter():
    for file in sorted(os.listdir(CORE)):
        if file.endswith(".py"):
            for module in imported_modules(os.path.join(CORE, file)):
                assert module.split(".")[0] != "ray", (file, module)
                if module.startswith("rllib_maddpg"):
                    assert module.startswith("rllib_maddpg.core"), (file, module)


def test_one_update_on_plain_torch_equals_the_rllib_policys():
    config, policies = build_policies()
    plain = [PlainLearner(config._maddpg_agents, k, policies[k].config, ACTION_SPACES[k]) for k in range(3)]
    for learner, policy in zip(plain, policies):
        learner.model.load_state_dict(
            {k: v for k, v in policy.model.state_dict().items()}, strict=True)
    batch = random_joint_batch(config._maddpg_agents, batch_size=64, seed=5)
    torch.manual_seed(0)
    jb.attach_target_actions(batch, policies)
    for k in range(3):
        torch.manual_seed(k)
        rllib_stats = update.update_agent(policies[k], {n: v.clone() for n, v in batch.items()})
        torch.manual_seed(k)
        plain_stats = update.update_agent(plain[k], {n: v.clone() for n, v in batch.items()})
        assert rllib_stats.keys() == plain_stats.keys()
        for name in rllib_stats:
            assert rllib_stats[name] == pytest.approx(plain_stats[name], rel=1e-6), name
        for name, value in policies[k].model.state_dict().items():
            np.testing.assert_allclose(value.numpy(), plain[k].model.state_dict()[name].numpy(), rtol=1e-6)
