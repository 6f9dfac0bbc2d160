"""One MADDPG update of agent i (or a shared group G), top to bottom: Algorithm 1's inner loop.

    update_agent(learner, batch):
        policy inference   fit mu_hat_i^j to the replayed a_j           (eq. 7)
        critic             y_i = r_i + gamma (1 - d_i) Q'_i(x', a'_1..a'_N)
                           minimise mean (Q_i(x, a_1..a_N) - y_i)^2     (eq. 6)
        every d-th update:
          actor            maximise Q_i(x, a_1.., mu_i(o_i), ..a_N)     (eq. 5, 9)
          targets          theta' <- tau theta + (1 - tau) theta'

MATD3 (Ackermann et al. 2019) is the same update with three options, all off
by default (MADDPG): twin critics Q^1_i, Q^2_i that both regress on
y_i = r_i + gamma (1 - d_i) min(Q^1'_i, Q^2'_i) while the actor ascends Q^1_i
(`twin_critics`); smoothed Box target actions a'_j (`target_action_noise`,
applied where a'_j is computed: actions.py); and the actor and targets
updated every d-th critic update (`actor_update_delay`; d = 1: every update).

each step: loss -> backward -> clip each variable's gradient -> optimizer
step. The equations are in losses.py. The minibatch (core/joint.py) already
carries the target actions a'_j = mu'_j(o'_j) of every agent, computed from
the current target actors just before the update (joint.attach_target_actions).

Plain torch: `learner` is any object with the attributes below (RLlib's
adapter, policy.py's MADDPGTorchPolicy, is one; tests/core builds one
without Ray):

    model            core.networks.MADDPGNetworks (actors, critic, targets, approximators)
    optimizers       {"actor": ..., "critic": ..., ["inference": ...]} torch optimizers
    config           gamma, tau, grad_norm_clipping, grad_norm_clipping_scope,
                     actor_regularization, policy_inference_entropy, actor_update_delay
    num_grad_updates the updates agent i has completed (RLlib's counter; read
                     only when actor_update_delay > 1)
    agents, group    the joint order (AgentSpecs) and the joint indices it acts for
    agent_index      the first of `group`
    critic_agents_of(i), inferred_agents, num_subpolicies, masked, agent_id_dim,
    agent_id_one_hot(i, rows), with_agent_id(x, i), action_head

The data-parallel learners (learners.py) compute the same losses on shards
(`LOSSES`) and step with `apply_gradients`.
"""

from typing import Dict, List, Optional

import torch

from rllib_maddpg.core import joint as jb
from rllib_maddpg.core import losses


def update_agent(learner, batch: Dict[str, torch.Tensor], actor_batches=None) -> Dict[str, float]:
    """One MADDPG update of agent i on a joint minibatch.

    With a policy ensemble, `actor_batches[k]` is a minibatch from sub-policy
    k's own buffer D_i^(k) (paper eq. 9); the critic learns from `batch`.
    """
    stats: Dict[str, float] = {}
    # Policy inference (paper section 4.2): agent i's models of the others' policies.
    if learner.inferred_agents:
        loss, info = inference_loss(learner, batch)
        stats.update(info, **gradient_step(learner, "inference", loss))
    # Critic: regress Q_i (MATD3: Q^1_i and Q^2_i) on the TD target y_i.
    loss, info = critic_loss(learner, batch)
    stats.update(info, **gradient_step(learner, "critic", loss))
    # MATD3's delayed policy updates: actor and targets every d-th critic update.
    if not actor_update_due(learner):
        return stats
    # Actor: ascend grad_{a_i} Q_i through mu_i.
    loss, info = actor_loss(learner, batch, actor_batches)
    if loss is not None:  # an ensemble whose sub-buffers are all empty yet
        stats.update(info, **gradient_step(learner, "actor", loss))
    # Targets.
    soft_update_targets(learner)
    return stats


# --- the losses of agent i, on its columns of the joint minibatch ------------


def critic_loss(learner, batch: Dict[str, torch.Tensor]):
    """Regress Q_i(x, a_1..a_N) on y_i = r_i + gamma (1 - d_i) Q'_i(x', a'_1..a'_N) (eq. 6);
    with n-step rows, gamma^k per row and r_i, d_i, x' over those k steps (core/nstep.py).

    A shared policy's critic Q_G(x, a, id_i) learns from every agent i of its
    group on the minibatch: |G| x B targets, each with agent i's reward and
    termination; the loss is their mean (a group of one: agent i's own).
    With masked critics, the mean is over the rows where agent i acted.
    With twin critics (MATD3), y_i takes the min of Q^1'_i and Q^2'_i and the
    loss is the sum of both critics' losses on it.
    """
    model, twin = learner.model, learner.model.twin_critics
    # n-step rows (core/nstep.py) carry gamma^k per row; one-step rows use gamma.
    gamma = batch.get(jb.DISCOUNT_COL, learner.config["gamma"])
    q_t, y, masks = [[] for _ in model.critics], [], []
    for i in learner.group:
        seen = learner.critic_agents_of(i)
        with torch.no_grad():
            obs_tp1 = jb.gather(batch, jb.new_obs_col, seen)
            act_tp1 = (critic_target_actions(learner, batch, seen)
                       + critic_extras(learner, batch, seen, i, jb.next_alive_col))
            target_q_tp1 = [model.q(target, obs_tp1, act_tp1) for target in model.target_critics]
        target = losses.twin_critic_target if twin else losses.critic_target
        y.append(target(batch[jb.rewards_col(i)], batch[jb.terminateds_col(i)], *target_q_tp1, gamma))
        obs_t = jb.gather(batch, jb.obs_col, seen)
        act_t = jb.gather(batch, jb.actions_col, seen) + critic_extras(learner, batch, seen, i, jb.alive_col)
        for q, critic in zip(q_t, model.critics):
            q.append(model.q(critic, obs_t, act_t))
        masks.append(batch[jb.alive_col(i)])
    q_t, y = [torch.cat(q) for q in q_t], torch.cat(y)
    mask = torch.cat(masks) if learner.masked else None
    stats = {"q_mean": losses.masked_mean(q_t[0], mask).item(),
             "target_y_mean": losses.masked_mean(y, mask).item()}
    if twin:
        stats["q2_mean"] = losses.masked_mean(q_t[1], mask).item()
        return losses.twin_critic_loss(q_t[0], q_t[1], y, mask), stats
    return losses.critic_loss(q_t[0], y, mask), stats


def critic_extras(learner, batch: Dict[str, torch.Tensor], seen: List[int], i: int,
                  alive_col) -> List[torch.Tensor]:
    """What the critic reads beside the observations and actions: the alive
    flags of the agents it sees (masked critics; `alive_col` is jb.alive_col
    for x, jb.next_alive_col for x'), then id_i (a policy shared with agent ids)."""
    extras = [batch[alive_col(k)].unsqueeze(-1) for k in seen] if learner.masked else []
    if learner.agent_id_dim:
        extras.append(learner.agent_id_one_hot(i, batch[jb.rewards_col(i)].shape[0]))
    return extras


def critic_target_actions(learner, batch: Dict[str, torch.Tensor], seen=None) -> List[torch.Tensor]:
    """a'_k for the agents the critic sees (`seen`, default agent i's): from the
    true target actors (already in the batch) or, with policy inference, from
    agent i's own approximations mu_hat'_i^k (paper eq. 8)."""
    return [
        learner.model.target_approximators[str(k)].target_action(batch[jb.new_obs_col(k)])
        if k in learner.inferred_agents
        else batch[jb.target_actions_col(k)]
        for k in (learner.critic_agents if seen is None else seen)
    ]


def actor_update_due(learner) -> bool:
    """Whether this update of agent i also steps its actor and targets: the d-th,
    2d-th, ... (`actor_update_delay` d, TD3's policy delay; d = 1: every update).

    Counted by the learner's completed updates `num_grad_updates`, RLlib's
    per-policy counter, which policy.py restores from checkpoints, so a
    restored run keeps the phase of its delay.
    """
    d = learner.config["actor_update_delay"]
    return d == 1 or (learner.num_grad_updates + 1) % d == 0


def actor_loss(learner, batch: Dict[str, torch.Tensor], actor_batches=None):
    """Ascend Q_i(x, a_1.., mu_i(o_i), ..a_N); the other agents' actions come from D (eq. 5).

    With twin critics (MATD3) the actor ascends Q^1_i only.

    The critic's weights are frozen meanwhile, so grad_a_i Q_i reaches theta_i
    only. A shared policy ascends the mean over its group's agents i of
    Q_G(x, a_1.., mu_G(o_i, id_i), ..a_N, id_i). With a policy ensemble,
    sub-policy k ascends the same objective on its own buffer's minibatch,
    scaled by 1/K (paper eq. 9).
    """
    critic_params = learner.params["critic"]
    for p in critic_params:
        p.requires_grad_(False)
    try:
        if learner.num_subpolicies == 1:
            parts = [_actor_loss(learner, batch, 0, i) for i in learner.group]
            return sum(parts) / len(parts), {}
        parts = [_actor_loss(learner, b, k, learner.agent_index) for k, b in (actor_batches or {}).items()]
        return (sum(parts) / learner.num_subpolicies if parts else None), {}
    finally:
        for p in critic_params:
            p.requires_grad_(True)


def _actor_loss(learner, batch: Dict[str, torch.Tensor], k: int, i: int) -> torch.Tensor:
    """Agent i's actor loss with sub-policy k: a_i replaced by mu^(k)(o_i) in Q
    (masked critics: on the rows where agent i acted)."""
    seen, model = learner.critic_agents_of(i), learner.model
    pre_activation = model.actors[k](learner.with_agent_id(batch[jb.obs_col(i)], i))
    act_n = jb.gather(batch, jb.actions_col, seen)
    act_n[seen.index(i)] = learner.action_head.policy_action(pre_activation)
    q_pi = model.q(model.critic, jb.gather(batch, jb.obs_col, seen),
                   act_n + critic_extras(learner, batch, seen, i, jb.alive_col))
    mask = batch[jb.alive_col(i)] if learner.masked else None
    return losses.actor_loss(q_pi, pre_activation, learner.config["actor_regularization"], mask)


def inference_loss(learner, batch: Dict[str, torch.Tensor]):
    """Fit mu_hat_i^j to agent j's replayed actions, for every inferred j (eq. 7)."""
    total, stats = 0.0, {}
    for k in learner.inferred_agents:
        approx = learner.model.approximators[str(k)]
        obs, actions = batch[jb.obs_col(k)], batch[jb.actions_col(k)]
        log_prob, entropy = approx.log_prob_and_entropy(obs, actions)
        total = total + losses.policy_inference_loss(
            log_prob, entropy, learner.config["policy_inference_entropy"],
            batch[jb.alive_col(k)] if learner.masked else None,
        )
        with torch.no_grad():
            error = (approx.expected_action(obs) - actions).abs().mean().item()
        stats[f"inference_action_error/{learner.agents[k].agent_id}"] = error
    return total, stats


# --- optimizer steps and targets ----------------------------------------------


def trained_nets(learner, name: str) -> List[List[torch.Tensor]]:
    """The parameters optimizer `name` trains, one list per net (each clipped on its own)."""
    if name == "actor":
        return [learner.params[f"actors.{k}"] for k in range(learner.num_subpolicies)]
    if name == "critic":
        return [learner.params["critic"]] + ([learner.params["critic_2"]] if learner.model.twin_critics else [])
    return [learner.params["approximators"]]


def gradient_step(learner, name: str, loss: torch.Tensor) -> Dict[str, float]:
    """backward, clip, step of optimizer `name` ("actor", "critic", "inference")."""
    learner.optimizers[name].zero_grad(set_to_none=True)
    loss.backward()
    return {f"{name}_loss": loss.item(), f"{name}_grad_norm": apply_gradients(learner, name)}


def apply_gradients(learner, name: str) -> float:
    """Clip the gradients of the nets optimizer `name` trains (see `clip_gradients`),
    then step it. Returns the (mean over nets) global gradient norm before clipping."""
    clip, scope = learner.config["grad_norm_clipping"], learner.config["grad_norm_clipping_scope"]
    norms = []
    for net_params in trained_nets(learner, name):
        grads = [p.grad for p in net_params if p.grad is not None]
        if grads:
            norms.append(clip_gradients(grads, clip, scope))
    learner.optimizers[name].step()
    return sum(norms) / len(norms) if norms else 0.0


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


def soft_update_targets(learner) -> None:
    """theta'_i <- tau theta_i + (1 - tau) theta'_i for the actors, the critic(s) (and approximators)."""
    params, tau = learner.params, learner.config["tau"]
    losses.soft_update(params["target_critic"], params["critic"], tau)
    if learner.model.twin_critics:
        losses.soft_update(params["target_critic_2"], params["critic_2"], tau)
    losses.soft_update(params["target_actors"], params["actors"], tau)
    if learner.inferred_agents:
        losses.soft_update(params["target_approximators"], params["approximators"], tau)


# The loss of each optimizer, as the data-parallel learners compute it on a shard.
LOSSES = {
    "inference": lambda learner, batch, actor_batches=None: (
        inference_loss(learner, batch) if learner.inferred_agents else (None, {})),
    "critic": lambda learner, batch, actor_batches=None: critic_loss(learner, batch),
    "actor": actor_loss,
}
