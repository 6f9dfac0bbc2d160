"""MADDPG's learners on Ray actors: one per agent (model parallel) or L replicas (data parallel).

Zhou and Chen ("Distributed Multi-Agent Reinforcement Learning", CMU) tried
both with Celery and found them communication-bound for small networks.
Here Ray carries the messages; `benchmarks/learners.py` measures when each
pays off. Sampling stays on RLlib's env runners either way.

Per-agent learners (`per_agent_learners=True`). Agent i's policy (actor,
critic, targets, optimizers) lives on its own Ray actor. Per update round the
driver samples the joint minibatch, computes the target actions a'_j with its
copies of the target actors, and sends each learner only the columns its
critic reads; the learners update in parallel and send back their actors and
target actors, which the driver keeps (for the next target actions and for
the env runners). The driver's full copy of a policy (critic, optimizer
state) is refreshed from its learner only for checkpoints.

Data-parallel learners (`data_parallel_learners=L > 1`). The driver keeps the
policies and updates them; L replica actors hold copies. For each phase of
an update (inference, critic, actor, in that order) the driver sends the
current weights and one shard of the minibatch to each replica, which returns
the gradient of its shard's mean loss; the driver averages them, weighted by
shard size (the gradient of the whole minibatch's mean loss), clips and
steps, as the single learner does (MATD3's options too: the twin critics
are one "critic" phase, and a policy whose actor update is delayed skips the
actor phase and the target update). With deterministic actions (Box heads)
this matches the single learner up to floating point; Gumbel-Softmax
samples differ in their noise, not their distribution.
"""

from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np
import ray
import torch

from rllib_maddpg.core import joint as jb
from rllib_maddpg.core import update
from rllib_maddpg.policy import MADDPGTorchPolicy


def _to_torch(batch: Mapping[str, np.ndarray]) -> Dict[str, torch.Tensor]:
    # Arrays from Ray's object store are read-only; the update only reads them.
    return {k: torch.from_numpy(np.array(v, copy=False)) if v.flags.writeable else torch.tensor(v)
            for k, v in batch.items()}


def _actor_state(policy) -> Dict[str, Dict[str, np.ndarray]]:
    return {
        name: {k: v.detach().cpu().numpy() for k, v in getattr(policy.model, name).state_dict().items()}
        for name in ("actors", "target_actors")
    }


def _load_actor_state(policy, state) -> None:
    for name, weights in state.items():
        getattr(policy.model, name).load_state_dict({k: torch.tensor(v) for k, v in weights.items()})


def _build_policy(spec, policy_config):
    # The policy sets this process's torch threads (torch_num_threads).
    policy_class = spec.policy_class or MADDPGTorchPolicy  # None: the algorithm's default
    return policy_class(spec.observation_space, spec.action_space, policy_config)


def policy_configs(config) -> Dict[str, tuple]:
    """policy id -> (PolicySpec, merged policy config dict), as RLlib builds them."""
    out = {}
    base = config.to_dict()
    for agent in config._maddpg_agents:  # a shared policy: once, for its first agent
        if agent.policy_id in out:
            continue
        spec = config.policies[agent.policy_id]
        out[agent.policy_id] = (spec, {**base, **(spec.config or {}), "__policy_id": agent.policy_id})
    return out


@ray.remote
class AgentLearner:
    """Holds one agent's MADDPG policy and updates it (per-agent learners)."""

    def __init__(self, spec, policy_config):
        self.policy = _build_policy(spec, policy_config)

    def ready(self) -> bool:
        return True

    def learn(self, batch, actor_batches=None):
        actor_batches = None if actor_batches is None else {k: _to_torch(b) for k, b in actor_batches.items()}
        stats = self.policy.learn_on_batch(_to_torch(batch), actor_batches)
        return stats, _actor_state(self.policy)

    def get_state(self):
        return self.policy.get_state()

    def set_state(self, state) -> None:
        self.policy.set_state(state)


@ray.remote
class GradientReplica:
    """Copies of all agents' policies; computes gradients on a shard (data-parallel learners)."""

    def __init__(self, specs: Mapping[str, tuple]):
        self.policies = {pid: _build_policy(spec, cfg) for pid, (spec, cfg) in specs.items()}

    def ready(self) -> bool:
        return True

    def gradients(self, phase: str, weights, shard, actor_shards=None):
        """d(mean loss of `phase` on the shard)/d(params), per policy, with the given weights."""
        shard = _to_torch(shard)
        out = {}
        for pid, policy in self.policies.items():
            policy.model.load_state_dict({k: torch.tensor(v) for k, v in weights[pid].items()})
            ab = None if not actor_shards or pid not in actor_shards else {
                k: _to_torch(b) for k, b in actor_shards[pid].items()}
            loss, _ = update.LOSSES[phase](policy, shard, ab)
            if loss is None:
                continue
            params = _flat_params(policy, phase)
            grads = torch.autograd.grad(loss, params, allow_unused=True)
            out[pid] = ([None if g is None else g.numpy() for g in grads], loss.item())
        return out


def make_learners(config):
    """The config's learner actors (PerAgentLearners, DataParallelLearners), or None to
    learn in this process. Creating them does not wait: Ray places each actor when a
    node with `learner_resources` has room (`placed()` says when all are)."""
    if config.per_agent_learners:
        return PerAgentLearners(config, config.learner_resources)
    if config.data_parallel_learners > 1:
        return DataParallelLearners(config, config.data_parallel_learners, config.learner_resources)
    return None


class _LearnerActors:
    """What both kinds of learners share: their Ray actors, and whether all are placed."""

    def actors(self) -> Dict[str, object]:
        raise NotImplementedError

    def placed(self) -> bool:
        """Whether every actor is up (never waits); raises RayActorError if one died."""
        if not hasattr(self, "_ready"):
            self._ready = [actor.ready.remote() for actor in self.actors().values()]
        done, _ = ray.wait(self._ready, num_returns=len(self._ready), timeout=0)
        if len(done) < len(self._ready):
            return False
        ray.get(done)
        return True


class PerAgentLearners(_LearnerActors):
    """Driver side of per-agent learners: one AgentLearner per policy."""

    def __init__(self, config, resources: Mapping[str, float]):
        remote = AgentLearner.options(**_actor_options(resources))
        self.learners = {pid: remote.remote(spec, cfg) for pid, (spec, cfg) in policy_configs(config).items()}

    def push_states(self, policies: Mapping[str, object]) -> None:
        """Copies the driver's policies (e.g. just restored) to the learners."""
        ray.get([self.learners[pid].set_state.remote(p.get_state()) for pid, p in policies.items()])

    def pull_states(self, policies: Mapping[str, object]) -> None:
        """Copies the learners' full policies (critics, optimizers) to the driver's."""
        states = ray.get([self.learners[pid].get_state.remote() for pid in policies])
        for policy, state in zip(policies.values(), states):
            policy.set_state(state)

    def pull_surviving_states(self, policies: Mapping[str, object], timeout_s: float = 60) -> List[str]:
        """As pull_states, for the learners still alive; returns the policy ids of the lost ones,
        whose driver copies keep their current actors and their critics as last pulled."""
        lost = []
        for pid, policy in policies.items():
            try:
                policy.set_state(ray.get(self.learners[pid].get_state.remote(), timeout=timeout_s))
            except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
                lost.append(pid)
        return lost

    def actors(self) -> Dict[str, object]:
        return dict(self.learners)

    def update(self, agents: Sequence[jb.AgentSpec], policies: Sequence, batch: Dict[str, np.ndarray],
               actor_batches: Dict[str, Optional[Dict]]) -> Dict[str, Dict]:
        refs = {}
        for k, (agent, policy) in enumerate(zip(agents, policies)):
            refs[agent.policy_id] = self.learners[agent.policy_id].learn.remote(
                _columns_for(policy, batch), actor_batches.get(agent.policy_id)
            )
        results = {}
        for agent, policy in zip(agents, policies):
            stats, actor_state = ray.get(refs[agent.policy_id])
            _load_actor_state(policy, actor_state)
            policy.num_grad_updates += 1
            results[agent.policy_id] = stats
        return results


class DataParallelLearners(_LearnerActors):
    """Driver side of data-parallel learners: L gradient replicas, the driver steps."""

    def __init__(self, config, num_replicas: int, resources: Mapping[str, float]):
        remote = GradientReplica.options(**_actor_options(resources))
        specs = policy_configs(config)
        self.replicas = [remote.remote(specs) for _ in range(num_replicas)]

    def actors(self) -> Dict[str, object]:
        return {f"replica {k}": r for k, r in enumerate(self.replicas)}

    def update(self, agents: Sequence[jb.AgentSpec], policies: Sequence, batch: Dict[str, np.ndarray],
               actor_batches: Dict[str, Optional[Dict]]) -> Dict[str, Dict]:
        by_id = {a.policy_id: p for a, p in zip(agents, policies)}
        size = len(next(iter(batch.values())))
        bounds = np.linspace(0, size, len(self.replicas) + 1).astype(int)
        shards = [{k: v[lo:hi] for k, v in batch.items()} for lo, hi in zip(bounds[:-1], bounds[1:])]
        weights_of_shard = np.diff(bounds) / size
        actor_shards = [
            {pid: {s: {c: v[int(lo * len(v) / size):int(hi * len(v) / size)] for c, v in b.items()}
                   for s, b in ab.items()}
             for pid, ab in actor_batches.items() if ab}
            for lo, hi in zip(bounds[:-1], bounds[1:])
        ]
        stats = {pid: {} for pid in by_id}
        # actor_update_delay: which policies step their actors and targets this round.
        due = {pid: update.actor_update_due(p) for pid, p in by_id.items()}
        for phase in update.LOSSES:  # inference, critic, actor: Algorithm 1's order
            if phase == "actor" and not any(due.values()):
                continue
            weights = ray.put({pid: {k: v.detach().numpy() for k, v in p.model.state_dict().items()}
                               for pid, p in by_id.items()})
            grads = ray.get([
                r.gradients.remote(phase, weights, shard, actor_shard)
                for r, shard, actor_shard in zip(self.replicas, shards, actor_shards)
            ])
            for pid, policy in by_id.items():
                if pid not in grads[0] or (phase == "actor" and not due[pid]):
                    continue
                policy.optimizers[phase].zero_grad(set_to_none=True)
                for n, param in enumerate(_flat_params(policy, phase)):
                    parts = [(w, g[pid][0][n]) for w, g in zip(weights_of_shard, grads)
                             if g[pid][0][n] is not None]
                    if parts:
                        param.grad = torch.as_tensor(sum(w * g for w, g in parts), dtype=param.dtype,
                                                     device=param.device)
                # The minibatch's mean loss is the size-weighted mean of the shards'.
                stats[pid][f"{phase}_loss"] = float(sum(w * g[pid][1] for w, g in zip(weights_of_shard, grads)))
                stats[pid][f"{phase}_grad_norm"] = update.apply_gradients(policy, phase)
        for pid, policy in by_id.items():
            if due[pid]:
                update.soft_update_targets(policy)
            policy.num_grad_updates += 1
        return {pid: {"learner_stats": s} for pid, s in stats.items()}


def _flat_params(policy, phase: str) -> List[torch.Tensor]:
    return [p for net_params in update.trained_nets(policy, phase) for p in net_params]


def _columns_for(policy, batch: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """The columns a policy's learner reads: those of the agents its critics see,
    and the rewards and terminations of the agents it acts for."""
    seen = sorted({k for i in policy.group for k in policy.critic_agents_of(i)})
    names = [c(k) for k in seen for c in (jb.obs_col, jb.actions_col, jb.new_obs_col,
                                          jb.target_actions_col, jb.alive_col, jb.next_alive_col)]
    names += [c(i) for i in policy.group for c in (jb.rewards_col, jb.terminateds_col)]
    return {name: batch[name] for name in names}


def _actor_options(resources: Mapping[str, float]) -> Dict:
    resources = dict(resources)
    options = {"num_cpus": resources.pop("CPU", 1), "num_gpus": resources.pop("GPU", 0)}
    if resources:
        options["resources"] = resources
    return options
