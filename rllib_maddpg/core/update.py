"""One MADDPG update of agent i (or a shared group G), top to bottom: Algorithm 1's inner loop.

    update_agent(learner, batch):
        policy inference   fit mu_hat_i^j to the replayed a_j           (eq. 7)
        critic             y_i = r_i + gamma (1 - d_i) Q'_i(x', a'_1..a'_N)
                           minimise mean (Q_i(x, a_1..a_N) - y_i)^2     (eq. 6)
        actor              maximise Q_i(x, a_1.., mu_i(o_i), ..a_N)     (eq. 5, 9)
        targets            theta' <- tau theta + (1 - tau) theta'

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
                     actor_regularization, policy_inference_entropy
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
    # Critic: regress Q_i on the TD target y_i.
    loss, info = critic_loss(learner, batch)
    stats.update(info, **gradient_step(learner, "critic", loss))
    # Actor: ascend grad_{a_i} Q_i through mu_i.
    loss, info = actor_loss(learner, batch, actor_batches)
    if loss is not None:  # an ensemble whose sub-buffers are all empty yet
        stats.update(info, **gradient_step(learner, "actor", loss))
    # Targets.
    soft_update_targets(learner)
    return stats


# --- the losses of agent i, on its columns of the joint minibatch ------------


def critic_loss(learner, batch: Dict[str, torch.Tensor]):
    """Regress Q_i(x, a_1..a_N) on y_i = r_i + gamma (1 - d_i) Q'_i(x', a'_1..a'_N) (eq. 6).

    A shared policy's critic Q_G(x, a, id_i) learns from every agent i of its
    group on the minibatch: |G| x B targets, each with agent i's reward and
    termination; the loss is their mean (a group of one: agent i's own).
    With masked critics, the mean is over the rows where agent i acted.
    """
    model, gamma = learner.model, learner.config["gamma"]
    q_t, y, masks = [], [], []
    for i in learner.group:
        seen = learner.critic_agents_of(i)
        with torch.no_grad():
            target_q_tp1 = model.q(
                model.target_critic,
                jb.gather(batch, jb.new_obs_col, seen),
                critic_target_actions(learner, batch, seen)
                + critic_extras(learner, batch, seen, i, jb.next_alive_col),
            )
        y.append(losses.critic_target(batch[jb.rewards_col(i)], batch[jb.terminateds_col(i)],
                                      target_q_tp1, gamma))
        q_t.append(model.q(model.critic, jb.gather(batch, jb.obs_col, seen),
                           jb.gather(batch, jb.actions_col, seen)
                           + critic_extras(learner, batch, seen, i, jb.alive_col)))
        masks.append(batch[jb.alive_col(i)])
    q_t, y = torch.cat(q_t), torch.cat(y)
    mask = torch.cat(masks) if learner.masked else None
    stats = {"q_mean": losses.masked_mean(q_t, mask).item(),
             "target_y_mean": losses.masked_mean(y, mask).item()}
    return losses.critic_loss(q_t, y, mask), stats


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


def actor_loss(learner, batch: Dict[str, torch.Tensor], actor_batches=None):
    """Ascend Q_i(x, a_1.., mu_i(o_i), ..a_N); the other agents' actions come from D (eq. 5).

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
    return [learner.params["critic" if name == "critic" else "approximators"]]


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
    """theta'_i <- tau theta_i + (1 - tau) theta'_i for the actors, the critic (and approximators)."""
    params, tau = learner.params, learner.config["tau"]
    losses.soft_update(params["target_critic"], params["critic"], tau)
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
