"""A lockstep sampler for MADDPG: all sub-envs step together, one actor call per agent per step.

RLlib's generic old-stack sampler handles agents that come and go, so it
computes actions per agent through connectors and collectors; measured here
it ran ~5x slower than the env itself. MADDPG's agents all act at every step,
which allows a much simpler loop over a runner's E sub-envs:

    for each step:
        for each agent k:  a_k[0..E) = mu_k(o_k[0..E))      (one batched call)
        for each env e:    step env e with {agent: a_k[e]}
        write o, a, r, o', done into preallocated [T, E] arrays

At the end of the fragment, each agent's rows become a SampleBatch and
every policy's `postprocess_trajectory` attaches the other agents' columns
(joint_batch.attach_joint_columns), exactly as with RLlib's sampler.

Not supported here (set `use_lockstep_sampler=False` for RLlib's sampler):
RLlib's per-episode callbacks (on_episode_start/step/end) and observation
filters. Episodes are summarized for RLlib's metrics (returns per policy,
lengths, and an env's `episode_metrics()` as custom metrics) as RLlib's
sampler does.
"""

import itertools
from typing import Dict, List

import gymnasium as gym
import numpy as np

from ray.rllib.evaluation.metrics import RolloutMetrics
from ray.rllib.evaluation.rollout_worker import RolloutWorker
from ray.rllib.models.catalog import ModelCatalog
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from ray.rllib.utils.annotations import override

from rllib_maddpg import joint_batch as jb


class LockstepEnvRunner(RolloutWorker):
    """An old-stack RolloutWorker whose `sample()` is the lockstep loop above."""

    @override(RolloutWorker)
    def sample(self, **kwargs) -> MultiAgentBatch:
        if getattr(self, "_lockstep", None) is None:
            self._lockstep = LockstepSampler(self)
        batch = self._lockstep.sample(self.config.get_rollout_fragment_length(self.worker_index))
        self.callbacks.on_sample_end(worker=self, samples=batch)
        return batch

    @override(RolloutWorker)
    def get_metrics(self) -> List[RolloutMetrics]:
        if getattr(self, "_lockstep", None) is None:
            return []
        return self._lockstep.pop_metrics()


class LockstepSampler:
    """Steps a worker's sub-envs in lockstep and keeps their episodes going across calls."""

    def __init__(self, worker: RolloutWorker):
        self.agents: List[jb.AgentSpec] = list(worker.config._maddpg_agents)
        self.policies = [worker.policy_map[a.policy_id] for a in self.agents]
        self.envs = worker.async_env.get_sub_environments()
        # Discrete/MultiDiscrete observations become one-hot vectors, as RLlib's
        # own sampler does; Box observations go to the actor as they are.
        spaces = [self.envs[0].get_observation_space(a.agent_id) for a in self.agents]
        self.preprocessors = [
            None if isinstance(space, gym.spaces.Box)
            else ModelCatalog.get_preprocessor_for_space(space)
            for space in spaces
        ]
        self._episode_ids = itertools.count(
            np.random.default_rng().integers(1 << 40) << 20
        )
        # Policy ensembles: one sub-policy per agent per episode, drawn here
        # (uniformly, shared within `ensemble_shared_draw` groups) unless
        # `subpolicy_for_acting` fixes it.
        config = worker.config
        seed = None if config.seed is None else config.seed + 1000 * worker.worker_index
        self._draw_rng = np.random.default_rng(seed)
        self._fixed_subpolicy = config.subpolicy_for_acting
        group_of = {pid: g for g, group in enumerate(config.ensemble_shared_draw) for pid in group}
        self._draw_groups = [group_of.get(a.policy_id, ("alone", k)) for k, a in enumerate(self.agents)]
        self._ensembles = any(a.num_subpolicies > 1 for a in self.agents)
        self._metrics: List[RolloutMetrics] = []
        n_envs = len(self.envs)
        self._obs = [np.zeros((n_envs, a.obs_dim), np.float32) for a in self.agents]
        self._eps_id = np.zeros(n_envs, np.int64)
        self._t = np.zeros(n_envs, np.int64)
        self._returns = np.zeros((n_envs, len(self.agents)))
        self._subpolicy = np.zeros((n_envs, len(self.agents)), np.int64)
        for e in range(n_envs):
            self._reset(e)

    def pop_metrics(self) -> List[RolloutMetrics]:
        metrics, self._metrics = self._metrics, []
        return metrics

    def _observe(self, obs: Dict, k: int, e: int, t: int) -> np.ndarray:
        agent = self.agents[k]
        try:
            o = obs[agent.agent_id]
        except KeyError:
            raise RuntimeError(
                f"agent {agent.agent_id!r} got no observation at step {t} of an episode: "
                "MADDPG needs every agent to act at every step until the episode ends "
                "(keep done agents in the episode, e.g. with zero reward, until all are done)."
            ) from None
        prep = self.preprocessors[k]
        return o if prep is None else prep.transform(o)

    def _reset(self, e: int) -> None:
        obs, _ = self.envs[e].reset()
        for k in range(len(self.agents)):
            self._obs[k][e] = self._observe(obs, k, e, 0)
        self._eps_id[e] = next(self._episode_ids)
        self._t[e] = 0
        self._returns[e] = 0.0
        if self._ensembles:
            self._draw_subpolicies(e)

    def _draw_subpolicies(self, e: int) -> None:
        draws = {}
        for k, agent in enumerate(self.agents):
            if agent.num_subpolicies == 1:
                continue
            if self._fixed_subpolicy is not None:
                self._subpolicy[e, k] = self._fixed_subpolicy
                continue
            group = self._draw_groups[k]
            if group not in draws:
                draws[group] = self._draw_rng.integers(agent.num_subpolicies)
            self._subpolicy[e, k] = draws[group]

    def _end_episode(self, e: int) -> None:
        env = self.envs[e]
        self._metrics.append(
            RolloutMetrics(
                episode_length=int(self._t[e]),
                episode_reward=float(self._returns[e].sum()),
                agent_rewards={
                    (a.agent_id, a.policy_id): float(r) for a, r in zip(self.agents, self._returns[e])
                },
                # Task metrics of the paper (envs/mpe_metrics.py), read before the reset.
                custom_metrics=env.episode_metrics() if hasattr(env, "episode_metrics") else {},
            )
        )
        self._reset(e)

    def sample(self, steps_per_env: int) -> MultiAgentBatch:
        """`steps_per_env` steps of every sub-env, as one MultiAgentBatch."""
        T, E, agents = steps_per_env, len(self.envs), self.agents
        obs = [np.zeros((T, E, a.obs_dim), np.float32) for a in agents]
        new_obs = [np.zeros((T, E, a.obs_dim), np.float32) for a in agents]
        critic_actions = [np.zeros((T, E, a.action_dim), np.float32) for a in agents]
        env_actions: List[List[np.ndarray]] = [[] for _ in agents]
        rewards = np.zeros((len(agents), T, E), np.float32)
        terminateds = np.zeros((len(agents), T, E), bool)
        truncateds = np.zeros((len(agents), T, E), bool)
        eps_id = np.zeros((T, E), np.int64)
        t_col = np.zeros((T, E), np.int64)
        subpolicy = np.zeros((T, E, len(agents)), np.int64)
        ids = [a.agent_id for a in agents]

        for t in range(T):
            subpolicy[t] = self._subpolicy
            for k, policy in enumerate(self.policies):
                obs[k][t] = self._obs[k]
                inputs = {SampleBatch.OBS: self._obs[k]}
                if agents[k].num_subpolicies > 1:
                    inputs[jb.SUBPOLICY] = self._subpolicy[:, k]
                action, _, extra = policy.compute_actions_from_input_dict(inputs)
                env_actions[k].append(action)
                critic_actions[k][t] = extra[jb.CRITIC_ACTION]
            eps_id[t], t_col[t] = self._eps_id, self._t
            for e, env in enumerate(self.envs):
                o, r, term, trunc, _ = env.step({aid: env_actions[k][t][e] for k, aid in enumerate(ids)})
                self._t[e] += 1
                for k, aid in enumerate(ids):
                    new_obs[k][t, e] = self._observe(o, k, e, self._t[e])
                    rewards[k, t, e] = r[aid]
                    terminateds[k, t, e] = term.get(aid, term["__all__"])
                    truncateds[k, t, e] = trunc.get(aid, trunc["__all__"])
                self._returns[e] += rewards[:, t, e]
                if term["__all__"] or trunc["__all__"]:
                    self._end_episode(e)
                else:
                    for k in range(len(agents)):
                        self._obs[k][e] = new_obs[k][t, e]

        def rows(x: np.ndarray) -> np.ndarray:
            # [T, E, ...] -> [E * T, ...]: each sub-env's steps contiguous, in time order.
            return np.swapaxes(x, 0, 1).reshape((E * T,) + x.shape[2:])

        batches = {}
        for k, agent in enumerate(agents):
            batches[agent.agent_id] = SampleBatch({
                SampleBatch.OBS: rows(obs[k]),
                SampleBatch.NEXT_OBS: rows(new_obs[k]),
                SampleBatch.ACTIONS: rows(np.stack(env_actions[k])),
                jb.CRITIC_ACTION: rows(critic_actions[k]),
                SampleBatch.REWARDS: rows(rewards[k]),
                SampleBatch.TERMINATEDS: rows(terminateds[k]),
                SampleBatch.TRUNCATEDS: rows(truncateds[k]),
                SampleBatch.EPS_ID: rows(eps_id),
                SampleBatch.T: rows(t_col),
                SampleBatch.AGENT_INDEX: np.full(E * T, k, np.int64),
                jb.SUBPOLICY: rows(subpolicy[:, :, k]),
            })
        policy_batches = {}
        for k, agent in enumerate(agents):
            others = {
                a.agent_id: (a.policy_id, self.policies[j], batches[a.agent_id])
                for j, a in enumerate(agents) if j != k
            }
            policy_batches[agent.policy_id] = self.policies[k].postprocess_trajectory(
                batches[agent.agent_id], others
            )
        return MultiAgentBatch(policy_batches, env_steps=E * T)
