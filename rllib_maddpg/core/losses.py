"""The MADDPG math: pure tensor functions, one per equation.

Lowe et al. 2017, "Multi-Agent Actor-Critic for Mixed Cooperative-Competitive
Environments", section 4.1 and Algorithm 1. Agent i has a deterministic actor
mu_i(o_i) with parameters theta_i and a centralized critic Q_i(x, a_1..a_N),
where x = (o_1..o_N) is every agent's observation.

MATD3 (Ackermann et al. 2019, "Reducing Overestimation Bias in Multi-Agent
Domains Using Double Centralized Critics") is MADDPG with TD3's three changes,
each an option of the same update: twin critics and their min in the target
(`twin_critic_target`, `twin_critic_loss`), target policy smoothing
(`smoothed_target_action`) and delayed actor updates (core/update.py).

Nothing here knows about RLlib, replay or agents' names: the policy passes
tensors in and applies the gradients. Shapes: B is the minibatch size.
"""

from typing import Iterable, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F


def critic_target(
    rewards_i: torch.Tensor,
    terminateds_i: torch.Tensor,
    target_q_tp1: torch.Tensor,
    gamma: Union[float, torch.Tensor],
) -> torch.Tensor:
    """TD target of agent i's critic (paper eq. 6).

        y_i = r_i + gamma * (1 - terminated) * Q'_i(x', a'_1..a'_N),
        a'_j = mu'_j(o'_j)

    `target_q_tp1` is Q'_i evaluated by the target critic on the next joint
    observation and the target actors' actions. Only a true termination stops
    bootstrapping; an episode cut by a time limit (truncation) still
    bootstraps, because the state after it has a value.

    Args:
        rewards_i: r_i, shape [B].
        terminateds_i: 1.0 where the episode terminated at t+1, shape [B].
        target_q_tp1: Q'_i(x', a'), shape [B].
        gamma: discount factor gamma; or, for n-step rows (core/nstep.py),
            gamma^k per row, shape [B], with r_i the k-step discounted reward sum.

    Returns:
        y_i, shape [B], with no gradient.
    """
    return (rewards_i + gamma * (1.0 - terminateds_i) * target_q_tp1).detach()


def twin_critic_target(
    rewards_i: torch.Tensor,
    terminateds_i: torch.Tensor,
    target_q1_tp1: torch.Tensor,
    target_q2_tp1: torch.Tensor,
    gamma: Union[float, torch.Tensor],
) -> torch.Tensor:
    """TD target of agent i's twin critics (MATD3, Ackermann et al. 2019).

        y_i = r_i + gamma * (1 - terminated) * min(Q^1'_i(x', a'), Q^2'_i(x', a'))

    The min of two independently initialised target critics counters the
    overestimation that maximising one learned Q brings (TD3's clipped double Q).

    Args:
        rewards_i, terminateds_i, gamma: as in `critic_target`.
        target_q1_tp1, target_q2_tp1: Q^1'_i(x', a') and Q^2'_i(x', a'), shape [B].

    Returns:
        y_i, shape [B], with no gradient.
    """
    return critic_target(rewards_i, terminateds_i, torch.minimum(target_q1_tp1, target_q2_tp1), gamma)


def twin_critic_loss(q1_t: torch.Tensor, q2_t: torch.Tensor, y: torch.Tensor,
                     mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Loss of agent i's twin critics (MATD3): both regress on the one target y_i.

        L = E[(Q^1_i(x, a) - y_i)^2] + E[(Q^2_i(x, a) - y_i)^2]

    The terms share no parameters, so one optimizer step on the sum is a step
    of each critic on its own MSE.
    """
    return critic_loss(q1_t, y, mask) + critic_loss(q2_t, y, mask)


def smoothed_target_action(action: torch.Tensor, sigma: float, noise_clip: float) -> torch.Tensor:
    """Target policy smoothing (TD3; MATD3) of a deterministic target action in [-1, 1].

        a'_j = clip(mu'_j(o'_j) + clip(eps, -c, c), -1, 1),  eps ~ N(0, sigma^2)

    so that the critic target averages Q' over a small neighbourhood of a'_j
    instead of exploiting a narrow peak. sigma = 0 returns `action` itself
    (and draws no random numbers).
    """
    if sigma == 0:
        return action
    noise = (sigma * torch.randn_like(action)).clamp(-noise_clip, noise_clip)
    return (action + noise).clamp(-1.0, 1.0)


def masked_mean(x: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
    """mean(x) over the rows where mask is 1 (all rows when mask is None).

    Agents that come and go: E over D is taken over the rows where agent i
    was present; rows without it carry no transition of agent i.
    """
    if mask is None:
        return x.mean()
    return (x * mask).sum() / mask.sum().clamp_min(1.0)


def critic_loss(q_t: torch.Tensor, y: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Critic loss of agent i (paper eq. 6).

        L(theta_i) = E_{x,a,r,x' ~ D} [ (Q_i(x, a_1..a_N) - y_i)^2 ]

    Args:
        q_t: Q_i(x, a_1..a_N) for the replayed actions, shape [B].
        y: the TD target from `critic_target`, shape [B].
        mask: 1.0 on the rows where agent i acted, shape [B]; None: all rows.
    """
    if mask is None:
        return F.mse_loss(q_t, y)
    return masked_mean((q_t - y).pow(2), mask)


def actor_loss(
    q_at_policy_action: torch.Tensor,
    actor_pre_activation: torch.Tensor,
    regularization: float,
    mask: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Actor loss of agent i (paper eq. 5), minimised by gradient descent.

        grad_theta_i J = E_{x,a ~ D} [ grad_theta_i mu_i(o_i)
                                        grad_a_i Q_i(x, a_1..a_N) |a_i = mu_i(o_i) ]

    which is the gradient of -E[Q_i(x, a_1.., mu_i(o_i), ..a_N)] when only
    a_i is replaced by the current policy's action (the other agents' actions
    come from the replay buffer). As in the original code, a small penalty on
    the actor's pre-activation output (the logits, or the values before tanh)
    keeps them from growing without bound:

        loss = -mean(Q_i) + regularization * mean(pre_activation^2)

    Args:
        q_at_policy_action: Q_i(x, a_1.., mu_i(o_i), ..a_N), shape [B].
        actor_pre_activation: mu_i's output before squashing, shape [B, A].
        regularization: the penalty's weight (original code: 1e-3).
        mask: 1.0 on the rows where agent i acted, shape [B]; None: all rows.
    """
    if mask is None:
        return -q_at_policy_action.mean() + regularization * actor_pre_activation.pow(2).mean()
    penalty = actor_pre_activation.pow(2).mean(-1)
    return masked_mean(-q_at_policy_action + regularization * penalty, mask)


@torch.no_grad()
def soft_update(
    target_params: Iterable[torch.Tensor], params: Iterable[torch.Tensor], tau: float
) -> None:
    """Polyak averaging of target networks (paper Algorithm 1, last line).

        theta'_i <- tau * theta_i + (1 - tau) * theta'_i
    """
    target_params = list(target_params)
    params = list(params)
    torch._foreach_mul_(target_params, 1.0 - tau)
    torch._foreach_add_(target_params, params, alpha=tau)


def policy_inference_loss(
    log_prob: torch.Tensor, entropy: torch.Tensor, entropy_weight: float,
    mask: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Loss of agent i's approximation mu_hat_i^j of agent j's policy (paper eq. 7).

        L(phi_i^j) = -E_{o_j, a_j ~ D} [ log mu_hat_i^j(a_j | o_j) + lambda H(mu_hat_i^j) ]

    Agent i fits mu_hat_i^j to the actions agent j took (from the replay
    buffer) without reading j's parameters; its target copy then stands in for
    mu'_j when agent i computes its critic target (paper eq. 8).

    Args:
        log_prob: log mu_hat_i^j(a_j | o_j), shape [B].
        entropy: H(mu_hat_i^j(. | o_j)), shape [B].
        entropy_weight: lambda (paper: unspecified; default 1e-3).
        mask: 1.0 on the rows where agent j acted, shape [B]; None: all rows.
    """
    return -masked_mean(log_prob + entropy_weight * entropy, mask)


def categorical_log_prob_and_entropy(
    logits: torch.Tensor, actions: torch.Tensor, segments: Sequence[int]
) -> Tuple[torch.Tensor, torch.Tensor]:
    """log p(a) and H(p) of independent categoricals p = softmax(logits) per segment.

    `actions` are one-hot or relaxed one-hot vectors (Gumbel-Softmax samples),
    concatenated like the logits; for a relaxed sample, sum_c a_c log p_c is
    the cross-entropy with the sample, which is log p(a) when a is one-hot.
    Both outputs are summed over the segments; shape [B].
    """
    log_prob = logits.new_zeros(logits.shape[0])
    entropy = logits.new_zeros(logits.shape[0])
    for l, a in zip(torch.split(logits, list(segments), -1), torch.split(actions, list(segments), -1)):
        log_p = torch.log_softmax(l, -1)
        log_prob = log_prob + (a * log_p).sum(-1)
        entropy = entropy - (log_p.exp() * log_p).sum(-1)
    return log_prob, entropy


def gaussian_log_prob_and_entropy(
    mean: torch.Tensor, log_std: torch.Tensor, actions: torch.Tensor
) -> Tuple[torch.Tensor, torch.Tensor]:
    """log N(a; mean, exp(log_std)^2) and the Gaussian's entropy, summed over action dims."""
    dist = torch.distributions.Normal(mean, log_std.exp())
    return dist.log_prob(actions).sum(-1), dist.entropy().sum(-1)
