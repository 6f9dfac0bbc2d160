"""The MADDPG equations (losses.py) against NumPy on hand-made numbers."""

import numpy as np
import pytest
import torch

from rllib_maddpg.core import losses

pytestmark = pytest.mark.unit


def test_critic_target_matches_numpy_and_stops_only_at_termination():
    r = np.array([1.0, -0.5, 2.0, 0.0], np.float32)
    d = np.array([0.0, 1.0, 0.0, 1.0], np.float32)  # truncated rows have d = 0
    q_tp1 = np.array([10.0, 10.0, -4.0, 3.0], np.float32)
    y = losses.critic_target(torch.tensor(r), torch.tensor(d), torch.tensor(q_tp1), 0.95)
    np.testing.assert_allclose(y.numpy(), r + 0.95 * (1 - d) * q_tp1, rtol=1e-6)
    # Hand-computed: 1 + .95*10, -0.5 (terminated), 2 - .95*4, 0 (terminated).
    np.testing.assert_allclose(y.numpy(), [10.5, -0.5, -1.8, 0.0], rtol=1e-6)
    assert not y.requires_grad


def test_critic_loss_is_mean_squared_td_error():
    q = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = torch.tensor([1.5, 2.0, 1.0])
    loss = losses.critic_loss(q, y)
    assert loss.item() == pytest.approx(np.mean([0.25, 0.0, 4.0]))
    loss.backward()
    np.testing.assert_allclose(q.grad.numpy(), 2 * (q.detach().numpy() - y.numpy()) / 3)


def test_actor_loss_is_minus_q_plus_output_penalty():
    q = torch.tensor([1.0, -3.0])
    pre = torch.tensor([[1.0, 2.0], [0.0, -1.0]])
    loss = losses.actor_loss(q, pre, 1e-3)
    expected = -np.mean([1.0, -3.0]) + 1e-3 * np.mean([1.0, 4.0, 0.0, 1.0])
    assert loss.item() == pytest.approx(expected)


def test_soft_update_is_polyak_average():
    target = [torch.tensor([0.0, 1.0]), torch.tensor([[2.0]])]
    online = [torch.tensor([1.0, 1.0]), torch.tensor([[0.0]])]
    losses.soft_update(target, online, tau=0.25)
    np.testing.assert_allclose(target[0].numpy(), [0.25, 1.0])
    np.testing.assert_allclose(target[1].numpy(), [[1.5]])


def test_policy_inference_loss_categorical_matches_numpy():
    logits = np.array([[1.0, 0.0, -1.0, 0.5, 0.5], [0.0, 2.0, 0.0, -1.0, 1.0]], np.float32)
    actions = np.array([[1, 0, 0, 0, 1], [0.2, 0.7, 0.1, 0.6, 0.4]], np.float32)  # one-hot, relaxed
    segments = [3, 2]
    log_prob, entropy = losses.categorical_log_prob_and_entropy(
        torch.tensor(logits), torch.tensor(actions), segments)
    expected_lp, expected_h = np.zeros(2), np.zeros(2)
    for lo, hi in ((0, 3), (3, 5)):
        l = logits[:, lo:hi]
        log_p = l - np.log(np.exp(l).sum(-1, keepdims=True))
        expected_lp += (actions[:, lo:hi] * log_p).sum(-1)
        expected_h += -(np.exp(log_p) * log_p).sum(-1)
    np.testing.assert_allclose(log_prob.numpy(), expected_lp, rtol=1e-5)
    np.testing.assert_allclose(entropy.numpy(), expected_h, rtol=1e-5)
    loss = losses.policy_inference_loss(log_prob, entropy, 0.1)
    assert loss.item() == pytest.approx(-np.mean(expected_lp + 0.1 * expected_h), rel=1e-5)


def test_policy_inference_loss_gaussian_matches_numpy():
    mean = np.array([[0.0, 0.5]], np.float32)
    log_std = np.array([[0.0, np.log(0.5)]], np.float32)
    a = np.array([[1.0, 0.0]], np.float32)
    log_prob, entropy = losses.gaussian_log_prob_and_entropy(
        torch.tensor(mean), torch.tensor(log_std), torch.tensor(a))
    std = np.exp(log_std)
    expected = (-0.5 * ((a - mean) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)).sum(-1)
    np.testing.assert_allclose(log_prob.numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(entropy.numpy(), (0.5 + 0.5 * np.log(2 * np.pi) + np.log(std)).sum(-1), rtol=1e-5)
