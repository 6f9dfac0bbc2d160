"""One MADDPG update of agent i, top to bottom (Algorithm 1, inner loop).

The equations are in losses.py; this module feeds them agent i's columns of
a joint minibatch and steps the optimizers. The minibatch already carries
the target actions a'_j = mu'_j(o'_j) of every agent, computed from the
current target actors just before the update (joint_batch.attach_target_actions).

    for phase in (inference, critic, actor):          # update_agent
        loss = phase_loss(policy, phase, batch)       # step_phase: mean over the minibatch,
        loss.backward(); clip_and_step(policy, phase) #   backward, clip, optimizer step
    soft_update_targets(policy)

`phase_loss` and `clip_and_step` are also what the learners on Ray actors
use (learners.py): data-parallel replicas compute `phase_loss` gradients on
shards, the driver averages them and calls `clip_and_step`.

`policy` is a MADDPGTorchPolicy: its nets (`policy.model`), optimizers, the
joint agent order and agent i's index, the agents its critic sees.
"""

from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from rllib_maddpg import joint_batch as jb
from rllib_maddpg import losses

# The phases of an update, in order; each has its own optimizer.
PHASES = ("inference", "critic", "actor")


def update_agent(policy, batch: Dict[str, torch.Tensor], actor_batches=None) -> Dict[str, float]:
    """One MADDPG update of agent i on a joint minibatch: inference, critic, actor, targets.

    With a policy ensemble, `actor_batches[k]` is a minibatch from sub-policy
    k's own buffer D_i^(k) (paper eq. 9); the critic learns from `batch`.
    """
    stats: Dict[str, float] = {}
    for phase in PHASES:
        stats.update(step_phase(policy, phase, batch, actor_batches))
    soft_update_targets(policy)
    return stats


def step_phase(policy, phase: str, batch, actor_batches=None) -> Dict[str, float]:
    """One gradient step of a phase: its loss on the minibatch, backward, clip, optimizer step."""
    loss, stats = phase_loss(policy, phase, batch, actor_batches)
    if loss is None:  # nothing to learn in this phase
        return stats
    optimizer = policy.phase_optimizer(phase)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    stats[f"{phase}_loss"] = loss.item()
    stats[f"{phase}_grad_norm"] = clip_and_step(policy, phase)
    return stats


def phase_loss(policy, phase: str, batch, actor_batches=None) -> Tuple[Optional[torch.Tensor], Dict]:
    """(mean loss of `phase` on the minibatch, or None if it has nothing to learn; stats)."""
    if phase == "inference":
        return inference_loss(policy, batch) if policy.inferred_agents else (None, {})
    if phase == "critic":
        return critic_loss(policy, batch)
    if phase == "actor":
        return actor_loss(policy, batch, actor_batches)
    raise ValueError(f"unknown update phase {phase!r}: one of {PHASES}")


# --- the losses of agent i, on its columns of the joint minibatch ------------


def critic_loss(policy, batch: Dict[str, torch.Tensor]):
    """Regress Q_i(x, a_1..a_N) on y_i = r_i + gamma (1 - d_i) Q'_i(x', a'_1..a'_N) (eq. 6).

    A shared policy's critic Q_G(x, a, id_i) learns from every agent i of its
    group on the minibatch: |G| x B targets, each with agent i's reward and
    termination; the loss is their mean (a group of one: agent i's own).
    With masked critics, the mean is over the rows where agent i acted.
    """
    model, gamma = policy.model, policy.config["gamma"]
    q_t, y, masks = [], [], []
    for i in policy.group:
        seen = policy.critic_agents_of(i)
        with torch.no_grad():
            target_q_tp1 = model.q(
                model.target_critic,
                jb.gather(batch, jb.new_obs_col, seen),
                critic_target_actions(policy, batch, seen)
                + critic_extras(policy, batch, seen, i, jb.next_alive_col),
            )
        y.append(losses.critic_target(batch[jb.rewards_col(i)], batch[jb.terminateds_col(i)],
                                      target_q_tp1, gamma))
        q_t.append(model.q(model.critic, jb.gather(batch, jb.obs_col, seen),
                           jb.gather(batch, jb.actions_col, seen)
                           + critic_extras(policy, batch, seen, i, jb.alive_col)))
        masks.append(batch[jb.alive_col(i)])
    q_t, y = torch.cat(q_t), torch.cat(y)
    mask = torch.cat(masks) if policy.masked else None
    stats = {"q_mean": losses.masked_mean(q_t, mask).item(),
             "target_y_mean": losses.masked_mean(y, mask).item()}
    return losses.critic_loss(q_t, y, mask), stats


def critic_extras(policy, batch: Dict[str, torch.Tensor], seen: List[int], i: int,
                  alive_col) -> List[torch.Tensor]:
    """What the critic reads beside the observations and actions: the alive
    flags of the agents it sees (masked critics; `alive_col` is jb.alive_col
    for x, jb.next_alive_col for x'), then id_i (a policy shared with agent ids)."""
    extras = [batch[alive_col(k)].unsqueeze(-1) for k in seen] if policy.masked else []
    if policy.agent_id_dim:
        extras.append(policy.agent_id_one_hot(i, batch[jb.rewards_col(i)].shape[0]))
    return extras


def critic_target_actions(policy, batch: Dict[str, torch.Tensor], seen=None) -> List[torch.Tensor]:
    """a'_k for the agents the critic sees (`seen`, default agent i's): from the
    true target actors (already in the batch) or, with policy inference, from
    agent i's own approximations mu_hat'_i^k (paper eq. 8)."""
    return [
        policy.model.target_approximators[str(k)].target_action(batch[jb.new_obs_col(k)])
        if k in policy.inferred_agents
        else batch[jb.target_actions_col(k)]
        for k in (policy.critic_agents if seen is None else seen)
    ]


def actor_loss(policy, batch: Dict[str, torch.Tensor], actor_batches=None):
    """Ascend Q_i(x, a_1.., mu_i(o_i), ..a_N); the other agents' actions come from D (eq. 5).

    The critic's weights are frozen meanwhile, so grad_a_i Q_i reaches theta_i
    only. A shared policy ascends the mean over its group's agents i of
    Q_G(x, a_1.., mu_G(o_i, id_i), ..a_N, id_i). With a policy ensemble,
    sub-policy k ascends the same objective on its own buffer's minibatch,
    scaled by 1/K (paper eq. 9).
    """
    critic_params = policy.params["critic"]
    for p in critic_params:
        p.requires_grad_(False)
    try:
        if policy.num_subpolicies == 1:
            parts = [_actor_loss(policy, batch, 0, i) for i in policy.group]
            return sum(parts) / len(parts), {}
        parts = [_actor_loss(policy, b, k, policy.agent_index) for k, b in (actor_batches or {}).items()]
        return (sum(parts) / policy.num_subpolicies if parts else None), {}
    finally:
        for p in critic_params:
            p.requires_grad_(True)


def _actor_loss(policy, batch: Dict[str, torch.Tensor], k: int, i: int) -> torch.Tensor:
    """Agent i's actor loss with sub-policy k: a_i replaced by mu^(k)(o_i) in Q
    (masked critics: on the rows where agent i acted)."""
    seen, model = policy.critic_agents_of(i), policy.model
    pre_activation = model.actors[k](policy.with_agent_id(batch[jb.obs_col(i)], i))
    act_n = jb.gather(batch, jb.actions_col, seen)
    act_n[seen.index(i)] = policy.action_head.policy_action(pre_activation)
    q_pi = model.q(model.critic, jb.gather(batch, jb.obs_col, seen),
                   act_n + critic_extras(policy, batch, seen, i, jb.alive_col))
    mask = batch[jb.alive_col(i)] if policy.masked else None
    return losses.actor_loss(q_pi, pre_activation, policy.config["actor_regularization"], mask)


def inference_loss(policy, batch: Dict[str, torch.Tensor]):
    """Fit mu_hat_i^j to agent j's replayed actions, for every inferred j (eq. 7)."""
    total, stats = 0.0, {}
    for k in policy.inferred_agents:
        approx = policy.model.approximators[str(k)]
        obs, actions = batch[jb.obs_col(k)], batch[jb.actions_col(k)]
        log_prob, entropy = approx.log_prob_and_entropy(obs, actions)
        total = total + losses.policy_inference_loss(
            log_prob, entropy, policy.config["policy_inference_entropy"],
            batch[jb.alive_col(k)] if policy.masked else None,
        )
        with torch.no_grad():
            error = (approx.expected_action(obs) - actions).abs().mean().item()
        stats[f"inference_action_error/{policy.agents[k].agent_id}"] = error
    return total, stats


# --- optimizer steps and targets ----------------------------------------------


def clip_and_step(policy, phase: str) -> float:
    """Clip the gradients of `phase`'s nets (see `clip_gradients`), then step its optimizer.

    Returns the (mean over nets) global gradient norm before clipping.
    """
    clip, scope = policy.config["grad_norm_clipping"], policy.config["grad_norm_clipping_scope"]
    norms = []
    for net_params in policy.phase_params(phase):
        grads = [p.grad for p in net_params if p.grad is not None]
        if grads:
            norms.append(clip_gradients(grads, clip, scope))
    policy.phase_optimizer(phase).step()
    return float(np.mean(norms)) if norms else 0.0


def clip_gradients(grads: List[torch.Tensor], clip: Optional[float], scope: str) -> float:
    """Clips one net's gradients in place; returns their global norm before clipping.

    scope "variable": each tensor g on its own, g * clip / max(|g|, clip), as
    the original code's `minimize_and_clip` (tf.clip_by_norm per variable).
    scope "network": all of the net's tensors together by their global norm
    (torch's clip_grad_norm_). `clip` None: no clipping.
    """
    per_tensor = torch.stack(torch._foreach_norm(grads))
    total = float(torch.linalg.vector_norm(per_tensor))
    if clip is None:
        return total
    if scope == "variable":
        scale = (clip / per_tensor.clamp_min(clip)).unbind()
        torch._foreach_mul_(grads, scale)
    else:
        torch._foreach_mul_(grads, min(1.0, clip / (total + 1e-6)))
    return total


def soft_update_targets(policy) -> None:
    """theta'_i <- tau theta_i + (1 - tau) theta'_i for the actors, the critic (and approximators)."""
    params, tau = policy.params, policy.config["tau"]
    losses.soft_update(params["target_critic"], params["critic"], tau)
    losses.soft_update(params["target_actors"], params["actors"], tau)
    if policy.inferred_agents:
        losses.soft_update(params["target_approximators"], params["approximators"], tau)
