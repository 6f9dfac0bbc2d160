"""MADDPG for RLlib: the MADDPG Algorithm (its config: config.py).

Lowe, Wu, Tamar, Harb, Abbeel, Mordatch (2017), "Multi-Agent Actor-Critic for
Mixed Cooperative-Competitive Environments" (NeurIPS); original code:
https://github.com/openai/maddpg. One training step here is Algorithm 1's
outer loop: sample env steps with the decentralized actors, store the joint
transitions in the replay buffer D, and, once D is warm, run one update per
agent every `env_steps_per_update` env steps on a minibatch from D.

Runs on RLlib's old API stack (RolloutWorker + TorchPolicyV2); the config
switches it on itself.
"""

import logging
from typing import Dict, List, Optional, Sequence

import numpy as np
import ray
import torch

from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.execution.rollout_ops import synchronous_parallel_sample
from ray.rllib.policy.sample_batch import concat_samples
from ray.rllib.utils.annotations import override
from ray.rllib.utils.metrics import (
    LEARN_ON_BATCH_TIMER,
    NUM_AGENT_STEPS_SAMPLED,
    NUM_AGENT_STEPS_TRAINED,
    NUM_ENV_STEPS_SAMPLED,
    NUM_ENV_STEPS_TRAINED,
    SAMPLE_TIMER,
    SYNCH_WORKER_WEIGHTS_TIMER,
)
from ray.tune.execution.placement_groups import PlacementGroupFactory

from rllib_maddpg import joint_batch
from rllib_maddpg.batched_learner import BatchedLearner, config_refusal, refusal
from rllib_maddpg.core import joint as jb
# AgentToPolicy: checkpoints written before config.py existed name it here.
from rllib_maddpg.config import AgentToPolicy, MADDPGConfig  # noqa: F401
from rllib_maddpg.fault_tolerance import FaultTolerance
from rllib_maddpg.policy import MADDPGTorchPolicy
from rllib_maddpg import ray_compat
from rllib_maddpg.learners import PerAgentLearners, make_learners
from rllib_maddpg.core.replay import JointReplayBuffer


logger = logging.getLogger(__name__)

# Counter of env steps sampled since the last update round (checkpointed).
STEPS_SINCE_UPDATE = "maddpg_env_steps_since_update"
NUM_UPDATE_ROUNDS = "maddpg_num_update_rounds"


def _numpy(batch: Dict[str, torch.Tensor]) -> Dict[str, np.ndarray]:
    return {k: v.cpu().numpy() for k, v in batch.items()}


@torch.no_grad()
def inference_quality(policy: MADDPGTorchPolicy, policies: Sequence, batch) -> Dict[str, float]:
    """How well agent i's approximations mu_hat_i^j match the true policies mu_j.

    A diagnostic only (agent i never reads mu_j to learn): KL(mu_j || mu_hat_i^j)
    of the categorical components (policy probabilities softmax(logits)), or the
    mean absolute difference of the deterministic Box actions, on the minibatch.
    """
    stats = {}
    for k in policy.inferred_agents:
        obs = batch[jb.obs_col(k)]
        approx = policy.model.approximators[str(k)]
        true_out = policies[k].model.actor(obs)
        segments = policy.agents[k].categorical_segments
        if segments:
            p_hat = approx.expected_action(obs).clamp_min(1e-8)
            p = torch.cat([torch.softmax(x, -1) for x in torch.split(true_out, list(segments), -1)], -1)
            value = (p * (p.clamp_min(1e-8).log() - p_hat.log())).sum(-1).mean()
        else:
            value = (approx.expected_action(obs) - torch.tanh(true_out)).abs().mean()
        stats[f"inference_vs_true/{policy.agents[k].agent_id}"] = float(value)
    return stats


class MADDPG(FaultTolerance, Algorithm):
    """MADDPG (Lowe et al. 2017): decentralized actors, centralized critics.

    Each `training_step` samples env steps with every agent's actor, stores
    them once in the joint replay buffer, and runs one update per agent per
    `env_steps_per_update` env steps once `num_steps_sampled_before_learning_starts`
    steps are stored. An update computes the target actions a'_j = mu'_j(o'_j)
    of every agent from its current target actor, then updates each agent's
    critic, actor and targets on the same joint minibatch (one agent after
    another, or all at once: `batched_update`, batched_learner.py).

    Lost env runners and learner actors: FaultTolerance (fault_tolerance.py).
    """

    @classmethod
    @override(Algorithm)
    def get_default_config(cls) -> MADDPGConfig:
        return MADDPGConfig()

    @classmethod
    @override(Algorithm)
    def get_default_policy_class(cls, config):
        return MADDPGTorchPolicy

    @classmethod
    @override(Algorithm)
    def default_resource_request(cls, config):
        request = super().default_resource_request(config)
        config = cls.get_default_config().update_from_dict(
            config.to_dict() if isinstance(config, AlgorithmConfig) else config
        )
        num_learners = (len({a.policy_id for a in config._maddpg_agents}) if config.per_agent_learners
                        else config.data_parallel_learners if config.data_parallel_learners > 1 else 0)
        if not num_learners:
            return request
        return PlacementGroupFactory(
            bundles=request.bundles + [dict(config.learner_resources)] * num_learners,
            strategy=request.strategy,
        )

    @override(Algorithm)
    def setup(self, config: MADDPGConfig) -> None:
        self.agents: Sequence[jb.AgentSpec] = config._maddpg_agents
        super().setup(config)  # FaultTolerance.setup, then Algorithm.setup
        # Learning on Ray actors (learners.py); None: in this process.
        self.learners = make_learners(config)
        if isinstance(self.learners, PerAgentLearners):
            self.learners.push_states(self.policies_by_id())
        # All agents in one batched update (batched_learner.py), or None: one update per policy.
        self.batched = None
        self.use_batched_update(config.batched_update)
        # A learner on a GPU (config.resources(num_gpus=1): RLlib puts the driver's
        # policies there; env runners act on CPU): D is mirrored on it, so minibatches
        # are drawn there (core/replay.py).
        device = self.agent_policies()[0].device
        if device.type != "cpu" and self.learners is None:
            self.local_replay_buffer.mirror_on(device)

    def use_batched_update(self, mode: str) -> None:
        """Switches the learner between one update per policy ("off") and the batched
        learner ("on"; "auto": when the setup allows it), as config key `batched_update`
        says (setup calls it with the config's value); Adam's state carries over either way."""
        if self.batched is not None:
            self.batched.save_optimizer_states()  # the per-agent loop continues from them
            self.batched = None
        if mode == "off":
            return
        policies = self.agent_policies()
        reason = config_refusal(self.config) or refusal(policies)
        if reason is None:
            self.batched = BatchedLearner(policies)
        elif mode == "on":
            raise ValueError(f"batched_update='on' cannot batch these agents: {reason}. Use "
                             "batched_update='auto' to fall back to one update per policy, or 'off'.")
        else:
            logger.warning("batched_update='auto': one update per policy, because %s.", reason)

    def policies_by_id(self) -> Dict[str, MADDPGTorchPolicy]:
        """{policy id: policy}, each policy once (a shared policy for all its agents)."""
        return {a.policy_id: self.get_policy(a.policy_id) for a in self.agents}

    @override(Algorithm)
    def __getstate__(self) -> Dict:
        if isinstance(getattr(self, "learners", None), PerAgentLearners):
            try:
                self.learners.pull_states(self.policies_by_id())  # critics, optimizers
            except ray.exceptions.RayActorError as error:
                self.fall_back_to_local_learner(error)
        if getattr(self, "batched", None) is not None:
            self.batched.save_optimizer_states()  # Adam's state into the policies it checkpoints
        return super().__getstate__()

    @override(Algorithm)
    def __setstate__(self, state) -> None:
        super().__setstate__(state)
        if isinstance(getattr(self, "learners", None), PerAgentLearners):
            self.learners.push_states(self.policies_by_id())
        if getattr(self, "batched", None) is not None:
            # The restored policies' Adam state into a new batched learner (the weights were
            # loaded in place: still views of the old stacks, copied into new ones).
            self.batched = None
            self._batch_again()

    def _batch_again(self) -> None:
        """A new batched learner from the policies as they are now; if they cannot be
        batched any more, the per-agent loop (an error only with batched_update="on")."""
        self.use_batched_update("on" if self.config.batched_update == "on" else "auto")

    # Algorithm.setup resolves config.env with this: a class path builds the env
    # as the class itself would, Cls(env_config) (ray_compat.env_id_and_creator).
    _get_env_id_and_creator = staticmethod(ray_compat.env_id_and_creator)

    @override(Algorithm)
    def _create_local_replay_buffer_if_necessary(self, config) -> JointReplayBuffer:
        # Called by Algorithm.setup: D is MADDPG's joint buffer, not RLlib's.
        return JointReplayBuffer(
            config.replay_buffer_config["capacity"],
            jb.replay_columns(self.agents, config.n_step),
            seed=config.seed,
            # D_i^(k) of each policy ensemble: the rows where agent i used sub-policy k.
            subset_columns=[jb.subpolicy_col(k) for k, a in enumerate(self.agents)
                            if a.num_subpolicies > 1],
            moment_columns=[jb.rewards_col(k) for k in range(len(self.agents))]
            if config.standardize_rewards else [],
        )

    def agent_policies(self) -> List[MADDPGTorchPolicy]:
        """The policies in joint agent order: element k acts for agent k (a shared
        policy appears once per agent of its group)."""
        return [self.get_policy(agent.policy_id) for agent in self.agents]

    def learning_agents(self) -> List[jb.AgentSpec]:
        """The first agent of each policy, in joint order: one update per policy
        (a shared policy learns for its whole group in one update)."""
        seen, first = set(), []
        for agent in self.agents:
            if agent.policy_id not in seen:
                seen.add(agent.policy_id)
                first.append(agent)
        return first

    @override(Algorithm)
    def training_step(self) -> Dict:
        cfg = self.config
        # 1. Sample with the decentralized actors; postprocessing attached the
        #    joint columns to every policy's batch.
        with self._timers[SAMPLE_TIMER]:
            batch = self._sample()
        if not batch:
            # Nothing arrived (the env runners are dead or restarting). None, not
            # {}: RLlib counts a failed step and raises after
            # num_consecutive_env_runner_failures_tolerance of them in a row,
            # instead of looping forever when no runner can come back.
            return None
        batch = batch.as_multi_agent()
        env_steps = batch.env_steps()
        self._counters[NUM_ENV_STEPS_SAMPLED] += env_steps
        self._counters[NUM_AGENT_STEPS_SAMPLED] += joint_batch.agent_steps(batch)

        # 2. Store each env step once, for all agents.
        self.local_replay_buffer.add(joint_batch.joint_rows(batch, self.agents, self.config.n_step))

        # 3. One update per agent every `env_steps_per_update` env steps (on the
        #    learner actors, if any: lost ones are replaced once Ray places them again).
        self.bring_learners_back()
        results = {}
        if len(self.local_replay_buffer) >= max(
            cfg.num_steps_sampled_before_learning_starts, cfg.train_batch_size
        ):
            self._counters[STEPS_SINCE_UPDATE] += env_steps
            with self._timers[LEARN_ON_BATCH_TIMER]:
                while self._counters[STEPS_SINCE_UPDATE] >= cfg.env_steps_per_update:
                    self._counters[STEPS_SINCE_UPDATE] -= cfg.env_steps_per_update
                    last = self._counters[STEPS_SINCE_UPDATE] < cfg.env_steps_per_update
                    results = self.update(diagnose=last)

        # 4. Send the new actor weights (and the env step count that anneals
        #    exploration noise) to the env runners.
        with self._timers[SYNCH_WORKER_WEIGHTS_TIMER]:
            self.env_runner_group.sync_weights(
                global_vars={"timestep": self._counters[NUM_ENV_STEPS_SAMPLED]}
            )
        return results

    def _sample(self):
        """Env steps from the env runners (None if none arrived)."""
        group = self.env_runner_group
        if group.num_remote_env_runners() == 0:
            return synchronous_parallel_sample(worker_set=group, concat=True)
        if self.env_runners_stay_down():
            return self.sample_while_runners_down()  # fault_tolerance.py
        if not self.config.overlap_sampling_and_learning:
            return synchronous_parallel_sample(worker_set=group, concat=True)
        # Pipelined: every remote runner always has one sample() in flight, so
        # runners step their envs while the driver learns. Runners act with
        # weights that are at most two fragments old.
        group.foreach_env_runner_async("sample", tag="sample")
        ready = group.fetch_ready_async_reqs(
            tags="sample", timeout_seconds=self.config.sample_timeout_s
        )
        group.foreach_env_runner_async("sample", tag="sample")
        batches = [batch for _, batch in ready]
        return concat_samples(batches) if batches else None

    def minibatch(self, policies: Sequence[MADDPGTorchPolicy], target_actions: bool = True
                  ) -> Dict[str, torch.Tensor]:
        """S joint rows from D (rewards standardised if asked) with the target
        actions a'_j = mu'_j(o'_j) of the target actors as they are now
        (`target_actions` False: without; the batched learner computes them itself)."""
        buffer, device = self.local_replay_buffer, policies[0].device
        if buffer.device is not None:  # D mirrored on the learner's device: no copy per minibatch
            batch = buffer.sample_tensors(self.config.train_batch_size)
        else:
            rows = buffer.sample(self.config.train_batch_size)
            batch = {name: torch.from_numpy(column).to(device) for name, column in rows.items()}
        if self.config.standardize_rewards:
            for k in range(len(self.agents)):
                column = jb.rewards_col(k)
                mean, std = buffer.mean_std(column)
                batch[column] = (batch[column] - mean) / max(std, 1e-6)
        dtype = policies[0].model.dtype  # float32, unless built under torch's default float64 (tests)
        if dtype != torch.float32:
            batch = {name: v.to(dtype) if v.is_floating_point() else v for name, v in batch.items()}
        if target_actions:
            jb.attach_target_actions(batch, policies, masked=self.config._maddpg_masked)
        return batch

    def _actor_batches(self, k: int, agent: jb.AgentSpec) -> Optional[Dict[int, Dict]]:
        """Policy ensembles: a minibatch per sub-policy from its own buffer D_k^(s)."""
        if agent.num_subpolicies == 1:
            return None
        buffer, column = self.local_replay_buffer, jb.subpolicy_col(k)
        device = self.get_policy(agent.policy_id).device
        return {
            s: {name: torch.from_numpy(v).to(device) for name, v in buffer.sample(
                self.config.train_batch_size, subset=(column, s)).items()}
            for s in range(agent.num_subpolicies) if buffer.subset_size(column, s) > 0
        }

    def update(self, diagnose: bool = False) -> Dict[str, Dict]:
        """One MADDPG update of every agent on a joint minibatch from D.

        All agents learn from one minibatch, or (`independent_minibatches`, as
        the original code) each from its own, drawn and given target actions
        just before its update. With `diagnose`, also reports how close each
        policy-inference approximation is to the true policy (`inference_quality`).
        With the batched learner (`batched_update`), all agents in one call.
        """
        size = self.config.train_batch_size
        policies = self.agent_policies()
        if self.batched is not None and not self.batched.acts_for(policies):
            self._batch_again()  # policies or their tensors were replaced
        learning = self.learning_agents()
        actor_batches = {a.policy_id: self._actor_batches(self.agents.index(a), a) for a in learning}
        if self.batched is not None:
            batch = self.minibatch(policies, target_actions=False)
            results = self.batched.update(batch)
        elif self.learners is None:
            results, batch = {}, None
            for agent in learning:
                if batch is None or self.config.independent_minibatches:
                    batch = self.minibatch(policies)
                results[agent.policy_id] = self.get_policy(agent.policy_id).learn_on_batch(
                    batch, actor_batches[agent.policy_id])
        else:
            batch = self.minibatch(policies)
            try:
                results = self.learners.update(
                    learning, [self.get_policy(a.policy_id) for a in learning], _numpy(batch),
                    {pid: None if ab is None else {s: _numpy(b) for s, b in ab.items()}
                     for pid, ab in actor_batches.items()},
                )
            except ray.exceptions.RayActorError as error:
                # This round is dropped (some agents may have updated); the next is local.
                self.fall_back_to_local_learner(error)
                return {}
        if diagnose and not isinstance(self.learners, PerAgentLearners):
            for agent in learning:
                policy = self.get_policy(agent.policy_id)
                if policy.inferred_agents:
                    results[agent.policy_id]["learner_stats"].update(
                        inference_quality(policy, policies, batch))
        self._counters[NUM_UPDATE_ROUNDS] += 1
        self._counters[NUM_ENV_STEPS_TRAINED] += size
        self._counters[NUM_AGENT_STEPS_TRAINED] += size * len(policies)
        return results
