"""A lockstep sampler for MADDPG: all sub-envs step together, one actor call per agent per step.

RLlib's generic old-stack sampler handles agents that come and go, so it
computes actions per agent through connectors and collectors; measured here
it ran ~5x slower than the env itself. MADDPG's joint rows have a slot for every
agent at every step, which allows a much simpler loop over a runner's E
sub-envs:

    for each step:
        for each agent k:  a_k[0..E) = mu_k(o_k[0..E))      (one batched call)
        for each env e:    step env e with {agent: a_k[e]} for the agents present
        write o, a, r, o', done, alive into preallocated [T, E] arrays

Agents that finish early, die, leave or arrive late: an agent is present
from the step the env first gives it an observation until it is terminated
or truncated, or the env stops giving it observations; only present agents
are sent actions. Each row records who was present (ALIVE: agent k acted
at t) and who is in the next joint state (NEXT_ALIVE: k has o'_k and did not
terminate); an absent agent's slots are zeros (padding). With
`strict_lockstep` (MPE's default), an agent that is absent before the
episode ends is an error instead (env_checks.not_lockstep).

At the end of the fragment, each agent's rows become a SampleBatch and
every policy's `postprocess_trajectory` runs, exactly as with RLlib's
sampler; the first agent's attaches every agent's columns
(joint_batch.attach_joint_columns), which go to the driver once, as the
JOINT_ROWS batch.

Batched envs: when a runner's sub-envs offer `batched(num_envs, seed)` (the
JaxMARL MPE backend, VMAS; the protocol: envs/batched.py), the sampler asks
the first for one env stepping all E copies and calls its `step` once per
step, with arrays instead of per-copy dicts; every agent acts at every step,
and ended copies restart within the step. The sub-envs RLlib built are not
stepped.

Not supported here (set `use_lockstep_sampler=False` for RLlib's sampler):
RLlib's per-episode callbacks (on_episode_start/step/end) and observation
filters. Episodes are summarized for RLlib's metrics (returns per policy,
lengths, and an env's `episode_metrics()` as custom metrics) as RLlib's
sampler does.
"""

import itertools
from typing import Dict, List

import numpy as np

from ray.rllib.evaluation.metrics import RolloutMetrics
from ray.rllib.evaluation.rollout_worker import RolloutWorker
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch, concat_samples
from ray.rllib.utils.annotations import override

from rllib_maddpg import joint_batch
from rllib_maddpg.core import joint as jb
from rllib_maddpg.env_checks import not_lockstep
from rllib_maddpg.envs.spaces import obs_flattener


class LockstepEnvRunner(RolloutWorker):
    """An old-stack RolloutWorker whose `sample()` is the lockstep loop above."""

    @override(RolloutWorker)
    def sample(self, **kwargs) -> MultiAgentBatch:
        if getattr(self, "_lockstep", None) is None:
            self._lockstep = LockstepSampler(self)
        batch = self._lockstep.sample(
            self.config.get_rollout_fragment_length(self.worker_index),
            complete_episodes=self.config.batch_mode == "complete_episodes",
        )
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
        self.ids = [a.agent_id for a in self.agents]
        self.policies = [worker.policy_map[a.policy_id] for a in self.agents]
        # The agents (joint indices) of each policy: a shared policy acts for
        # its whole group in one batched forward per step.
        self.groups: Dict[str, List[int]] = {}
        for k, agent in enumerate(self.agents):
            self.groups.setdefault(agent.policy_id, []).append(k)
        self.envs = worker.async_env.get_sub_environments()
        config = worker.config
        # One env stepping all E copies, if the sub-envs offer it (see above).
        self.batched_env = None
        if hasattr(self.envs[0], "batched"):
            if worker.config._maddpg_masked:
                raise ValueError(
                    "The env's batched copies step every agent at every step, but this config "
                    "masks agents that come and go (strict_lockstep=False): set "
                    "strict_lockstep=True, or use an env without `batched`.")
            seed = None if config.seed is None else config.seed + 1000 * worker.worker_index
            self.batched_env = self.envs[0].batched(len(self.envs), seed=seed)
        # Every observation becomes the flat vector the actor reads (envs/spaces.py).
        self.flatten = [obs_flattener(self.envs[0].get_observation_space(a.agent_id))
                        for a in self.agents]
        self.strict = not worker.config._maddpg_masked  # strict_lockstep, as resolved from the env
        self._episode_ids = itertools.count(
            np.random.default_rng().integers(1 << 40) << 20
        )
        # Policy ensembles: one sub-policy per agent per episode, drawn here
        # (uniformly, shared within `ensemble_shared_draw` groups) unless
        # `subpolicy_for_acting` fixes it.
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
        self._present = np.zeros((n_envs, len(self.agents)), bool)  # k acts at e's next step
        if self.batched_env is None:
            for e in range(n_envs):
                self._reset(e)
        else:
            obs = self.batched_env.reset(seed=seed)
            for k, agent in enumerate(self.agents):
                self._obs[k][:] = obs[agent.agent_id].reshape(n_envs, -1)
            self._present[:] = True
            for e in range(n_envs):
                self._start_episode(e)

    def pop_metrics(self) -> List[RolloutMetrics]:
        metrics, self._metrics = self._metrics, []
        return metrics

    def _reset(self, e: int) -> None:
        obs, _ = self.envs[e].reset()
        for k, agent in enumerate(self.agents):
            self._present[e, k] = agent.agent_id in obs
            self._obs[k][e] = self.flatten[k](obs[agent.agent_id]) if self._present[e, k] else 0.0
        if self.strict and not self._present[e].all():
            self._refuse([a.agent_id for a, p in zip(self.agents, self._present[e]) if not p],
                         "got no observation at the reset of an episode")
        self._start_episode(e)

    def _start_episode(self, e: int) -> None:
        self._eps_id[e] = next(self._episode_ids)
        self._t[e] = 0
        self._returns[e] = 0.0
        if self._ensembles:
            self._draw_subpolicies(e)

    @staticmethod
    def _refuse(agent_ids, what: str):
        raise not_lockstep(f"agent(s) {agent_ids} {what}")

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

    def _end_episode(self, e: int, custom_metrics=None) -> None:
        env = self.envs[e]
        if custom_metrics is None:
            custom_metrics = env.episode_metrics() if hasattr(env, "episode_metrics") else {}
        self._metrics.append(
            RolloutMetrics(
                episode_length=int(self._t[e]),
                episode_reward=float(self._returns[e].sum()),
                agent_rewards={
                    (a.agent_id, a.policy_id): float(r) for a, r in zip(self.agents, self._returns[e])
                },
                # Task metrics of the paper (envs/mpe_metrics.py), read before the reset.
                custom_metrics=custom_metrics,
            )
        )
        if self.batched_env is None:
            self._reset(e)
        else:  # the copy restarted in the step that ended it; its first obs are in self._obs
            self._start_episode(e)

    def sample(self, steps_per_env: int, complete_episodes: bool = False) -> MultiAgentBatch:
        """`steps_per_env` steps of every sub-env, as one MultiAgentBatch.

        With `complete_episodes` (RLlib's batch_mode="complete_episodes", e.g.
        for evaluation), each sub-env instead runs until its current episode
        ends (and no further), so the batch holds whole episodes only.
        """
        E, agents, n = len(self.envs), self.agents, len(self.agents)
        # One entry per step t: arrays over the E sub-envs.
        obs, new_obs, critic_actions, env_actions = ([[] for _ in agents] for _ in range(4))
        rewards, terminateds, truncateds, alive, next_alive = ([] for _ in range(5))
        eps_id, t_col, subpolicy, valid = ([] for _ in range(4))
        active = np.ones(E, bool)  # sub-envs still stepping in this call

        t = 0
        while (active.any() if complete_episodes else t < steps_per_env):
            subpolicy.append(self._subpolicy.copy())
            eps_id.append(self._eps_id.copy())
            t_col.append(self._t.copy())
            valid.append(active.copy())
            alive.append(self._present.T.copy())  # [n, E]: who acts at this step
            for group in self.groups.values():
                for k in group:
                    obs[k].append(self._obs[k].copy())
                    new_obs[k].append(np.zeros_like(self._obs[k]))
                if len(group) == 1:
                    inputs = {SampleBatch.OBS: self._obs[group[0]]}
                else:  # the group's agents stacked, and whose row is whose (joint index)
                    inputs = {SampleBatch.OBS: np.concatenate([self._obs[k] for k in group]),
                              SampleBatch.AGENT_INDEX: np.repeat(group, E)}
                if agents[group[0]].num_subpolicies > 1:  # never shared
                    inputs[jb.SUBPOLICY] = self._subpolicy[:, group[0]]
                action, _, extra = self.policies[group[0]].compute_actions_from_input_dict(inputs)
                for g, k in enumerate(group):
                    env_actions[k].append(action[g * E:(g + 1) * E])
                    # An absent agent's action slot is padding.
                    critic_action = extra[jb.CRITIC_ACTION][g * E:(g + 1) * E]
                    critic_actions[k].append(
                        critic_action if self.strict else critic_action * self._present[:, k, None])
            r_t, term_t, trunc_t = (np.zeros((n, E), np.float32), np.zeros((n, E), bool),
                                    np.zeros((n, E), bool))
            next_t = np.zeros((n, E), bool)
            step = [env_actions[k][t] for k in range(n)], [new_obs[k][t] for k in range(n)]
            if self.batched_env is None:
                ended, episode_metrics = self._step_copies(active, *step, r_t, term_t, trunc_t, next_t), None
            else:
                ended, episode_metrics = self._step_batched(*step, r_t, term_t, trunc_t)
                if complete_episodes and not (active[ended].all() and len(ended) in (0, active.sum())):
                    raise RuntimeError(
                        "batch_mode='complete_episodes' with a batched env needs its copies to "
                        "end their episodes at the same step (JaxMARL's MPE does).")
            self._returns += r_t.T
            for e in ended:
                self._end_episode(e, None if episode_metrics is None else episode_metrics[e])
                active[e] = not complete_episodes
            rewards.append(r_t), terminateds.append(term_t), truncateds.append(trunc_t)
            next_alive.append(next_t if not self.strict else alive[-1])
            t += 1

        return self._rows(agents, obs, new_obs, env_actions, critic_actions, rewards, terminateds,
                          truncateds, alive, next_alive, eps_id, t_col, subpolicy, valid)

    def _step_copies(self, active, actions, new_obs, r_t, term_t, trunc_t, next_t) -> List[int]:
        """One step of each active sub-env, one env.step() each: fills the step's
        new_obs [n][E, d], rewards, terminated, truncated and next-alive [n, E] in
        place, sets the next observations; returns the sub-envs whose episode ended."""
        ids = self.ids
        ended = []
        for e in np.flatnonzero(active):
            present = self._present[e]
            o, r, term, trunc, _ = self.envs[e].step(
                {aid: actions[k][e] for k, aid in enumerate(ids) if present[k]})
            self._t[e] += 1
            # A missing "__all__" is False, as RLlib reads it (its own
            # example envs return an empty truncateds dict).
            term_all, trunc_all = term.get("__all__", False), trunc.get("__all__", False)
            # Per env and agent: the hot loop, kept to plain indexing.
            for k, aid in enumerate(ids):
                seen = aid in o
                if self.strict and not seen:
                    self._refuse([aid], f"got no observation at step {self._t[e]} of an episode")
                if present[k]:
                    r_t[k, e] = r.get(aid, 0.0)
                    term_t[k, e] = term.get(aid, term_all)
                    trunc_t[k, e] = trunc.get(aid, trunc_all)
                # k is in the next joint state if it has o'_k and did not terminate
                # (an agent arriving now counts: its first observation is o'_k).
                next_t[k, e] = seen and not term_t[k, e]
                if next_t[k, e] or (seen and self.strict):
                    new_obs[k][e] = self.flatten[k](o[aid])
                self._present[e, k] = seen and not (term_t[k, e] or trunc_t[k, e])
            over = term_all or trunc_all or not self._present[e].any()
            if self.strict and not over and not self._present[e].all():
                self._refuse([aid for aid, p in zip(ids, self._present[e]) if not p],
                             f"finished, or got no observation, at step {self._t[e]} of an "
                             "episode while other agents continue")
            if over:
                ended.append(e)
        for k in range(len(ids)):  # each env's next observation (zeros for an absent agent); reset envs overwrite theirs
            self._obs[k][active] = (new_obs[k][active] if self.strict
                                    else new_obs[k][active] * self._present[active, k, None])
        return ended

    def _step_batched(self, actions, new_obs, r_t, term_t, trunc_t):
        """One step of all E copies of the batched env: fills the step's new_obs
        [n][E, d], rewards, terminated and truncated [n, E] in place, sets the
        next observations (restarted copies' first ones); returns the copies
        that ended and their episode metrics (None if none ended)."""
        ids = self.ids
        o, r, term, trunc, info = self.batched_env.step(dict(zip(ids, actions)))
        term, trunc = np.asarray(term, bool), np.asarray(trunc, bool)
        over = term | trunc
        final = info.get("final_obs") if over.any() else None
        for k, aid in enumerate(ids):
            obs_k = np.asarray(o[aid], np.float32).reshape(self._obs[k].shape)
            new_obs[k][:] = obs_k if final is None else np.where(
                over[:, None], np.asarray(final[aid], np.float32).reshape(obs_k.shape), obs_k)
            self._obs[k][:] = obs_k
            r_t[k], term_t[k], trunc_t[k] = r[aid], term, trunc
        self._t += 1
        ended = np.flatnonzero(over)
        metrics = None
        if len(ended):
            metrics = (self.batched_env.episode_metrics() if hasattr(self.batched_env, "episode_metrics")
                       else [{} for _ in range(len(over))])
        return ended, metrics

    def _rows(self, agents, obs, new_obs, env_actions, critic_actions, rewards, terminateds,
              truncateds, alive, next_alive, eps_id, t_col, subpolicy, valid) -> MultiAgentBatch:
        """The steps of one sample() call as each policy's postprocessed batch."""
        # [T, E, ...] -> rows: each sub-env's steps contiguous, in time order;
        # only the steps the sub-env actually took.
        keep = np.swapaxes(np.stack(valid), 0, 1).reshape(-1)

        def rows(steps: List[np.ndarray]) -> np.ndarray:
            x = np.stack(steps)
            return np.swapaxes(x, 0, 1).reshape((-1,) + x.shape[2:])[keep]

        rewards, terminateds, truncateds, alive, next_alive = (
            np.stack(x, axis=1) for x in (rewards, terminateds, truncateds, alive, next_alive))
        subpolicy = np.stack(subpolicy)
        batches = {}
        for k, agent in enumerate(agents):
            batches[agent.agent_id] = SampleBatch({
                SampleBatch.OBS: rows(obs[k]),
                SampleBatch.NEXT_OBS: rows(new_obs[k]),
                SampleBatch.ACTIONS: rows(env_actions[k]),
                jb.CRITIC_ACTION: rows(critic_actions[k]),
                SampleBatch.REWARDS: rows(list(rewards[k])),
                SampleBatch.TERMINATEDS: rows(list(terminateds[k])),
                SampleBatch.TRUNCATEDS: rows(list(truncateds[k])),
                jb.ALIVE: rows(list(alive[k])).astype(np.float32),
                jb.NEXT_ALIVE: rows(list(next_alive[k])).astype(np.float32),
                SampleBatch.EPS_ID: rows(eps_id),
                SampleBatch.T: rows(t_col),
                SampleBatch.AGENT_INDEX: np.full(int(keep.sum()), k, np.int64),
                jb.SUBPOLICY: rows(list(subpolicy[:, :, k])),
            })
        policy_batches = {}
        for pid, group in self.groups.items():
            postprocessed = []
            for k in group:
                others = {
                    a.agent_id: (a.policy_id, self.policies[j], batches[a.agent_id])
                    for j, a in enumerate(agents) if j != k
                }
                postprocessed.append(self.policies[k].postprocess_trajectory(batches[agents[k].agent_id], others))
                if k == 0:  # the row owner's hook attached the joint rows: ship them once
                    policy_batches[joint_batch.JOINT_ROWS] = joint_batch.split_joint_rows(postprocessed[-1])
            # A shared policy's batch: its agents' rows one after the other.
            policy_batches[pid] = postprocessed[0] if len(group) == 1 else concat_samples(postprocessed)
        return MultiAgentBatch(policy_batches, env_steps=int(keep.sum()))
