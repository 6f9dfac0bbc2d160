"""All agents' MADDPG updates as one batched call (config key `batched_update`, issue 23).

MADDPG.update normally runs core/update.py's `update_agent` once per policy.
When every agent has its own policy and all policies are alike (the same
sizes, nets and settings: the common MPE case), `BatchedLearner` instead runs
one `core.batched.BatchedMADDPG` update round for all of them: the same
equations on weights stacked along an agent dimension (about 1.2-1.8x fewer
CPU seconds per round, docs/perf/batched_update_floor/).

The policies stay what RLlib sees:
- weights: the stacks are the storage of the policies' own parameters
  (each policy's weight is a view of its slice), so an update round writes
  the policies' weights in place and get_weights / set_weights / checkpoints
  / the sync to env runners see them with no copy. A policy whose tensors
  were replaced (not written in place) is noticed before the next round and
  the stacks are rebuilt from the policies.
- Adam's state lives in the batched optimizers; `save_optimizer_states`
  copies each agent's slice into its policy's optimizers (MADDPG calls it
  before every checkpoint, `__getstate__`), and building a BatchedLearner
  reads them back (MADDPG rebuilds it after a restore, `__setstate__`).
- num_grad_updates and the learner stats are per policy, as update_agent's.

`refusal` says which setups it cannot take; `batched_update="auto"` then
keeps the per-agent loop, `"on"` raises an error that names the reason.
"""

from typing import Dict, List, Optional, Sequence

import torch

from rllib_maddpg.core.batched import BatchedMADDPG

# Policy config keys that must agree across the policies: one BatchedMADDPG
# (one head, one pair of optimizers, one set of nets' shapes) acts for all.
SAME_SETTINGS = (
    "actor_lr", "critic_lr", "gamma", "tau", "grad_norm_clipping", "grad_norm_clipping_scope",
    "actor_regularization", "actor_hiddens", "critic_hiddens", "actor_hidden_activation",
    "critic_hidden_activation", "gumbel_softmax_temperature", "gumbel_softmax_hard",
    "gumbel_target_noise", "simplex_box_actions",
)


def config_refusal(config) -> Optional[str]:
    """Why the algorithm config rules out the batched learner (None: it does not)."""
    if config.per_agent_learners or config.data_parallel_learners > 1:
        return ("the updates run on Ray learner actors (per_agent_learners / data_parallel_learners), "
                "which update per policy")
    if config.independent_minibatches:
        return "independent_minibatches gives each agent its own minibatch; the batched round shares one"
    if config.twin_critics or config.actor_update_delay > 1 or config.target_action_noise > 0:
        return "MATD3's keys (twin_critics, actor_update_delay, target_action_noise) are per-agent only"
    return None


def refusal(policies: Sequence) -> Optional[str]:
    """Why these policies (in joint agent order, one per agent) cannot be updated
    as one batch; None when they can."""
    first = policies[0]
    if len({id(p) for p in policies}) < len(policies):
        return "a policy is shared by several agents (parameter sharing)"
    for p in policies:
        pid = p.config["__policy_id"]
        if p.use_local_critic:
            return f"policy {pid!r} has a local critic (use_local_critic); the batched critics see all agents"
        if p.masked:
            return "agents come and go (strict_lockstep False): the critics read alive flags and masks"
        if p.inferred_agents:
            return f"policy {pid!r} infers the other policies (infer_other_policies)"
        if p.num_subpolicies > 1:
            return f"policy {pid!r} is a policy ensemble (num_subpolicies > 1)"
        if p.model.twin_critics or p.config["actor_update_delay"] > 1 or p.config["target_action_noise"] > 0:
            return f"policy {pid!r} uses MATD3's keys (twin_critics, actor_update_delay, target_action_noise)"
        me, other = p.agents[p.agent_index], first.agents[first.agent_index]
        if (me.obs_dim, me.action_dim, me.simplex_segments, me.categorical_segments) != (
                other.obs_dim, other.action_dim, other.simplex_segments, other.categorical_segments) \
                or p.action_space != first.action_space:
            return (f"agents {other.agent_id!r} and {me.agent_id!r} differ in their observation or "
                    "action spaces (heterogeneous agents)")
        for key in SAME_SETTINGS:
            if p.config[key] != first.config[key]:
                return f"policies {first.config['__policy_id']!r} and {pid!r} differ in {key}"
    # One Adam step count for all (e.g. a checkpoint of policies trained apart).
    steps = {_adam_steps(o) for p in policies for name, o in p.optimizers.items() if name != "inference"}
    if len(steps) > 1:
        return f"the policies' optimizers are at different Adam steps {sorted(steps, key=str)}"
    return None


def _adam_steps(optimizer) -> Optional[float]:
    """Its Adam step (None: never stepped), or a tuple when its parameters' steps differ."""
    steps = sorted({float(s["step"]) for s in optimizer.state_dict()["state"].values()})
    return None if not steps else steps[0] if len(steps) == 1 else tuple(steps)


class BatchedLearner:
    """One BatchedMADDPG update round for the policies of all agents (see the module docstring)."""

    def __init__(self, policies: Sequence):
        reason = refusal(policies)
        if reason:
            raise ValueError(f"cannot batch these policies: {reason}")
        self.policies: List = list(policies)
        first = self.policies[0]
        self.batched = BatchedMADDPG([p.model for p in self.policies], first.action_head, first.config,
                                     mode="shared", share_weights=True, foreach=True)
        # Where the policies' tensors are now (views of the stacks): a tensor that was
        # replaced, not written in place, has moved (0.1 ms to check at N = 12).
        self._storage = self._addresses()
        for name in ("actor", "critic"):
            self.batched.load_agent_optimizer_states(
                name, [p.optimizers[name].state_dict()["state"] for p in self.policies])

    def acts_for(self, policies: Sequence) -> bool:
        """Whether it still updates exactly these policies, through views of their weights."""
        return (len(policies) == len(self.policies) and all(a is b for a, b in zip(policies, self.policies))
                and self._addresses() == self._storage)

    def _addresses(self) -> List[tuple]:
        return [tuple(t.data_ptr() for t in p.model.parameters()) for p in self.policies]

    def update(self, batch: Dict[str, torch.Tensor]) -> Dict[str, Dict]:
        """One update round on a joint minibatch: {policy id: {"learner_stats": ...}},
        the stats update_agent reports, per policy."""
        stats = {name: values.tolist() for name, values in self.batched.update_round(batch).items()}
        results = {}
        for k, policy in enumerate(self.policies):
            policy.num_grad_updates += 1
            results[policy.config["__policy_id"]] = {
                "learner_stats": {name: values[k] for name, values in stats.items()}}
        return results

    def save_optimizer_states(self) -> None:
        """Copies each agent's slice of the batched Adam state into its policy's optimizers."""
        for name in ("actor", "critic"):
            for k, policy in enumerate(self.policies):
                optimizer = policy.optimizers[name]
                optimizer.load_state_dict({"state": self.batched.agent_optimizer_state(name, k),
                                           "param_groups": optimizer.state_dict()["param_groups"]})
