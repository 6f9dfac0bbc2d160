"""Acting and exploring (actions.py): Gumbel-Softmax samples and target actions on hand-made logits."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from rllib_maddpg.core.actions import gumbel_softmax, make_action_head

pytestmark = pytest.mark.unit


def test_gumbel_softmax_soft_sample_is_on_the_simplex_and_differentiable():
    torch.manual_seed(0)
    logits = torch.tensor([[1.0, 0.0, -1.0]] * 5, requires_grad=True)
    a = gumbel_softmax(logits, temperature=1.0, hard=False)
    assert torch.all(a > 0)
    np.testing.assert_allclose(a.sum(-1).detach().numpy(), 1.0, rtol=1e-6)
    assert len({tuple(row) for row in a.detach().numpy().round(4)}) > 1  # noisy
    a[:, 0].sum().backward()
    assert logits.grad.abs().sum() > 0


def test_gumbel_softmax_hard_is_one_hot_with_the_soft_gradient():
    logits = torch.tensor([[0.3, 1.2, -0.4, 0.0]], requires_grad=True)
    torch.manual_seed(1)
    hard = gumbel_softmax(logits, 0.7, hard=True)
    assert sorted(hard.detach().numpy().ravel().tolist()) == [0.0, 0.0, 0.0, 1.0]
    (hard * torch.arange(4.0)).sum().backward()
    grad_hard = logits.grad.clone()
    logits.grad = None
    torch.manual_seed(1)  # same Gumbel noise
    soft = gumbel_softmax(logits, 0.7, hard=False)
    (soft * torch.arange(4.0)).sum().backward()
    np.testing.assert_allclose(grad_hard.numpy(), logits.grad.numpy(), rtol=1e-6)
    assert soft.argmax().item() == hard.argmax().item()


def test_gumbel_softmax_without_noise_is_softmax_and_argmax_follows_the_probabilities():
    logits = torch.tensor([0.5, -1.0, 2.0])
    np.testing.assert_allclose(
        gumbel_softmax(logits, 2.0, hard=False, noise=False).numpy(),
        torch.softmax(logits / 2.0, -1).numpy(), rtol=1e-6,
    )
    # Gumbel-max: argmax of the noisy logits is a sample of softmax(logits).
    torch.manual_seed(0)
    samples = gumbel_softmax(logits.expand(20000, 3), 1.0, hard=True).argmax(-1)
    freq = np.bincount(samples.numpy(), minlength=3) / 20000
    np.testing.assert_allclose(freq, torch.softmax(logits, -1).numpy(), atol=0.015)


@pytest.mark.parametrize("kind, space", [
    ("simplex", gym.spaces.Box(0.0, 1.0, (5,))),
    ("discrete", gym.spaces.Discrete(4)),
])
def test_target_actions_sample_by_default_and_are_the_softmax_without_target_noise(kind, space):
    config = {"gumbel_softmax_temperature": 1.0, "gumbel_softmax_hard": False,
              "gumbel_target_noise": True, "simplex_box_actions": True}
    segments = [5] if kind == "simplex" else None
    logits = torch.tensor([[0.5, -1.0, 2.0, 0.0, 0.3][: 5 if kind == "simplex" else 4]] * 3)
    sampled = make_action_head(space, segments, config).target_action(logits)
    assert len({tuple(row) for row in sampled.numpy().round(4)}) > 1  # Gumbel noise: rows differ
    head = make_action_head(space, segments, {**config, "gumbel_target_noise": False})
    np.testing.assert_allclose(head.target_action(logits).numpy(), torch.softmax(logits, -1).numpy(),
                               rtol=1e-6)


def test_inferred_target_actions_follow_gumbel_target_noise_too():
    from rllib_maddpg.core.networks import PolicyApproximator

    torch.manual_seed(0)
    obs = torch.zeros(3, 4)  # the same input three times
    noisy = PolicyApproximator(4, 5, [5], [8], "relu", 1.0, False)
    assert len({tuple(row) for row in noisy.target_action(obs).detach().numpy().round(4)}) > 1
    quiet = PolicyApproximator(4, 5, [5], [8], "relu", 1.0, False, target_noise=False)
    np.testing.assert_allclose(quiet.target_action(obs).detach().numpy(),
                               quiet.expected_action(obs).detach().numpy(), rtol=1e-6)
