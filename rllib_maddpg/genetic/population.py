"""Distributed genetic MADDPG: a population of MADDPG members that share critics.

Zhou and Chen (CMU), "Distributed Multi-Agent Reinforcement Learning",
section V "Distributed Genetic MADDPG"; their code:
https://github.com/xindazz/DistributedMADDPG. Each worker runs the whole
MADDPG algorithm on its own (actors, critics, replay buffer); periodically
the worker with the best mean episode return sends its critic networks to
every other worker. Actors are never synced, so every member keeps its own
policies ("the best performing worker shares its own interpretation of the
environment"). Their simple_tag runs synced every 5000 steps ("critic sync
rate").

Here a member is a Ray actor that holds one `MADDPG` algorithm, so members
run in parallel and can sit on different nodes (`member_resources`).
`GeneticMADDPG` is a `ray.tune.Trainable` registered as "GeneticMADDPG"
(by rllib_maddpg/__init__.py, which imports this module on first use): one
`train()` trains every member for one MADDPG iteration, then applies the
sync rule (`critic_sync`).

Choices the report leaves open, made here (also in the README):

- What is copied: every agent's critic Q_i AND target critic Q'_i (the
  report says "critic network parameters"). Optimizer states stay with the
  receiving member.
- The metric: RLlib's smoothed mean over each member's last
  `metrics_num_episodes_for_smoothing` (default 100) training episodes, of
  the team's total return (`episode_return_mean`) or one policy's
  (`policy_reward_mean/<policy id>`). The report's code ran separate
  noise-free evaluation episodes instead.
- The interval is checked after each iteration, so a sync happens at the
  first iteration end at which every member has sampled at least
  `critic_sync_interval` env steps since the last sync.
"""

import io
import json
import logging
import math
import os
import shutil
import tarfile
import tempfile
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, TypeVar, Union

import numpy as np
import ray
from ray import tune
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.tune.execution.placement_groups import PlacementGroupFactory

from rllib_maddpg.config import MADDPGConfig
from rllib_maddpg.maddpg import MADDPG

logger = logging.getLogger(__name__)

# Result keys (see GeneticMADDPG.step).
MEMBERS = "members"
BEST_MEMBER = "best_member"
NUM_CRITIC_SYNCS = "num_critic_syncs"
CRITIC_SYNCED = "critic_synced_this_iter"
SYNC_SOURCE = "last_critic_sync_source"
SYNC_METRIC_VALUE = "sync_metric_value"
STEPS_PER_MEMBER = "num_env_steps_sampled_lifetime_per_member"
NUM_REPLACEMENTS = "num_member_replacements"
BEING_REPLACED = "being_replaced"
PROGRESS_EVERY_S = 30.0

GENETIC_KEYS = ("population_size", "critic_sync_interval", "sync_metric",
                "member_resources", "placement_strategy")
PLACEMENT_STRATEGIES = ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD")
_STATE_FILE = "genetic_state.json"

W = TypeVar("W")


# --- the sync rule -------------------------------------------------------------


def read_metric(result: Mapping[str, Any], sync_metric: str) -> float:
    """The value of `sync_metric` in one member's MADDPG result (nan if none yet).

    "episode_return_mean": the team's total return (all agents' rewards summed)
    per episode; "policy_reward_mean/<policy id>": that policy's return. Both
    are RLlib's means over the member's last `metrics_num_episodes_for_smoothing`
    episodes.
    """
    runners = result.get("env_runners") or {}
    if sync_metric == "episode_return_mean":
        value = runners.get("episode_return_mean")
    else:
        policy_id = sync_metric.split("/", 1)[1]
        value = (runners.get("policy_reward_mean") or {}).get(policy_id)
    return _float(value)


def best_member(metrics: Sequence[float]) -> Optional[int]:
    """Index of the largest finite metric (the lowest index on ties); None if none is finite."""
    finite = [(value, -i) for i, value in enumerate(metrics) if math.isfinite(value)]
    return -max(finite)[1] if finite else None


def critic_sync(
    metrics: Sequence[float],
    get_weights: Callable[[int], W],
    set_weights: Callable[[int, W], None],
) -> Optional[int]:
    """The genetic step: the best member's critics go to every other member.

    Reads the critics (all agents' Q_i and Q'_i) of `best_member(metrics)`
    once with `get_weights(best)` and loads them with `set_weights(i, weights)`
    into every other member i; the best member itself and all actors are left
    alone. Returns the best member, or None (no sync) when no member has a
    finite metric yet (no episode finished).
    """
    best = best_member(metrics)
    if best is None:
        return None
    weights = get_weights(best)
    for i in range(len(metrics)):
        if i != best:
            set_weights(i, weights)
    return best


def get_critic_weights(policies: Mapping[str, Any]) -> Dict[str, Dict]:
    """{policy id: policy.get_critic_weights()}: Q_i and Q'_i of every agent."""
    return {policy_id: policy.get_critic_weights() for policy_id, policy in policies.items()}


def set_critic_weights(policies: Mapping[str, Any], weights: Mapping[str, Dict]) -> None:
    """Loads `get_critic_weights()` of another member into these policies (critics only)."""
    if set(weights) != set(policies):
        raise ValueError(
            f"cannot copy critics between populations with different policies: "
            f"{sorted(weights)} vs {sorted(policies)}; every member must use the same "
            "env and multi_agent settings."
        )
    for policy_id, policy in policies.items():
        policy.set_critic_weights(weights[policy_id])


def agent_policies(algo: MADDPG) -> Dict[str, Any]:
    """{policy id: policy} of a MADDPG algorithm, in joint agent order."""
    return {agent.policy_id: policy for agent, policy in zip(algo.agents, algo.agent_policies())}


# --- configuration -------------------------------------------------------------


class GeneticMADDPGConfig(MADDPGConfig):
    """Configuration of distributed genetic MADDPG: a base MADDPG config plus the population.

    Every MADDPG and RLlib key configures each member (member i gets
    `seed + i` when `debugging(seed=...)` is set); `training()` adds the
    population's keys.

    Example:
        >>> from rllib_maddpg.genetic import GeneticMADDPGConfig
        >>> config = (
        ...     GeneticMADDPGConfig()
        ...     .environment("mpe/simple_tag")
        ...     .training(population_size=2, critic_sync_interval=5000,
        ...               sync_metric="policy_reward_mean/adversary_0")
        ...     .debugging(seed=0)
        ... )
        >>> algo = config.build_algo()   # a GeneticMADDPG; starts 2 member actors
        >>> algo.train()["members"]      # each member's returns
        >>> algo.stop()
    """

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or GeneticMADDPG)
        self.population_size = 2
        self.critic_sync_interval = 5000  # the report's "critic sync rate"
        self.sync_metric = "episode_return_mean"
        self.member_resources = {"CPU": 1}
        self.placement_strategy = "PACK"

    def training(
        self,
        *,
        population_size: Optional[int] = NotProvided,
        critic_sync_interval: Optional[int] = NotProvided,
        sync_metric: Optional[str] = NotProvided,
        member_resources: Optional[Dict[str, float]] = NotProvided,
        placement_strategy: Optional[str] = NotProvided,
        **kwargs,
    ) -> "GeneticMADDPGConfig":
        """Sets the population's keys; every other key goes to MADDPGConfig.training().

        Args:
            population_size: number P of MADDPG members trained in parallel,
                each with its own actors, critics and replay buffer. >= 2.
            critic_sync_interval: env steps (per member) between critic syncs;
                the report used 5000. An integer > 0, or None to never sync
                (P independent MADDPG runs, the baseline).
            sync_metric: what "best member" means: "episode_return_mean" (the
                team's total return, all agents summed) or
                "policy_reward_mean/<policy id>" (that policy's return, e.g.
                "policy_reward_mean/adversary_0" for simple_tag's predators).
                A mean over the member's last `metrics_num_episodes_for_smoothing`
                episodes (RLlib's window, default 100).
            member_resources: Ray resources reserved by each member's process,
                e.g. {"CPU": 1} or {"CPU": 1, "GPU": 0.5, "node_b": 1} (custom
                resources pin members to nodes). "CPU" defaults to 1 when not
                given. A member's remote env runners (num_env_runners > 0) get
                their own bundles on top.
            placement_strategy: placement group strategy of the members under
                Tune: "PACK" (RLlib's default: as few nodes as possible),
                "SPREAD", "STRICT_PACK" or "STRICT_SPREAD" (one member per node).

        Returns:
            This updated GeneticMADDPGConfig object.
        """
        super().training(**kwargs)
        for key in GENETIC_KEYS:
            value = locals()[key]
            if value is not NotProvided:
                setattr(self, key, value)
        return self

    def validate(self) -> None:
        super().validate()
        size = self.population_size
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 2:
            raise ValueError(
                f"population_size={size!r} is invalid: use an integer >= 2 (with one "
                "member, train MADDPG itself)."
            )
        interval = self.critic_sync_interval
        if interval is not None and (
            isinstance(interval, bool) or not isinstance(interval, (int, np.integer)) or interval <= 0
        ):
            raise ValueError(
                f"critic_sync_interval={interval!r} is invalid: use an integer > 0 "
                "(env steps per member), or None to never sync."
            )
        metric = self.sync_metric
        prefix = "policy_reward_mean/"
        if not isinstance(metric, str) or not (
            metric == "episode_return_mean" or metric.startswith(prefix)
        ):
            raise ValueError(
                f"sync_metric={metric!r} is invalid: use \"episode_return_mean\" (team "
                "total) or \"policy_reward_mean/<policy id>\"."
            )
        if metric.startswith(prefix) and self._maddpg_agents is not None:
            policy_ids = [agent.policy_id for agent in self._maddpg_agents]
            if metric[len(prefix):] not in policy_ids:
                raise ValueError(
                    f"sync_metric={metric!r} names no policy; the policies are {policy_ids}."
                )
        member_bundle(self.member_resources)  # raises on a bad dict
        if self.placement_strategy not in PLACEMENT_STRATEGIES:
            raise ValueError(
                f"placement_strategy={self.placement_strategy!r} is invalid: use one of "
                f"{list(PLACEMENT_STRATEGIES)}."
            )
        if interval is not None and interval < self.min_sample_timesteps_per_iteration:
            logger.info(
                "critic_sync_interval=%d is shorter than an iteration "
                "(min_sample_timesteps_per_iteration=%d): critics sync after every iteration.",
                interval, self.min_sample_timesteps_per_iteration,
            )

    def member_config_dict(self, index: int) -> Dict[str, Any]:
        """Member `index`'s MADDPG config as a dict: the base keys, seed + index."""
        config = {k: v for k, v in self.to_dict().items() if k not in GENETIC_KEYS}
        if self.seed is not None:
            config["seed"] = self.seed + index
        return config


def member_bundle(resources: Any) -> Dict[str, float]:
    """The resource bundle of one member ("CPU" 1 unless given); errors name the fix."""
    if not isinstance(resources, Mapping) or not all(
        isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0
        for k, v in resources.items()
    ):
        raise ValueError(
            f"member_resources={resources!r} is invalid: use a dict of resource name -> "
            "amount >= 0, e.g. {\"CPU\": 1} or {\"CPU\": 1, \"my_node\": 1}."
        )
    bundle = {"CPU": 1.0, **{k: float(v) for k, v in resources.items()}}
    if not any(bundle.values()):
        raise ValueError(
            f"member_resources={resources!r} reserves nothing (Ray placement groups need "
            "a resource in every bundle): give e.g. {\"CPU\": 1}, or {\"CPU\": 0.5} to "
            "run more members than CPUs."
        )
    return bundle


def _as_config(config: Union[Dict, AlgorithmConfig, None]) -> GeneticMADDPGConfig:
    if isinstance(config, GeneticMADDPGConfig):
        return config.copy(copy_frozen=False)
    out = GeneticMADDPGConfig()
    if isinstance(config, AlgorithmConfig):
        config = config.to_dict()
    return out.update_from_dict(dict(config or {}))


# --- a member: one MADDPG in a Ray actor ---------------------------------------


class Member:
    """One member of the population: a MADDPG algorithm (run as a Ray actor)."""

    def __init__(self, config: Dict[str, Any]):
        import rllib_maddpg  # noqa: F401  (registers the envs in this process)

        self.algo = MADDPGConfig().update_from_dict(config).build_algo()

    def ready(self) -> bool:
        return True

    def train(self) -> Dict[str, Any]:
        """One MADDPG iteration; the result without its config and per-episode lists."""
        result = self.algo.train()
        result.pop("config", None)
        runners = dict(result.get("env_runners") or {})
        runners.pop("hist_stats", None)
        runners.pop("episode_media", None)
        result["env_runners"] = runners
        return result

    def evaluate(self) -> Dict[str, Any]:
        """RLlib's Algorithm.evaluate() (settings from the base config's evaluation(...))."""
        return self.algo.evaluate()

    def get_critic_weights(self) -> Dict[str, Dict]:
        return get_critic_weights(agent_policies(self.algo))

    def set_critic_weights(self, weights: Dict[str, Dict]) -> None:
        set_critic_weights(agent_policies(self.algo), weights)

    def apply(self, fn: Callable[[MADDPG], Any]) -> Any:
        return fn(self.algo)

    def save_to_bytes(self) -> bytes:
        """The member's RLlib checkpoint as a tar archive (the member may be on another node)."""
        directory = tempfile.mkdtemp(prefix="genetic_member_")
        try:
            self.algo.save(directory)
            return _pack(directory)
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    def restore_from_bytes(self, data: bytes) -> None:
        directory = tempfile.mkdtemp(prefix="genetic_member_")
        try:
            _unpack(data, directory)
            self.algo.restore(directory)
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    def stop(self) -> None:
        self.algo.stop()


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _pack(directory: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(directory, arcname=".")
    return buffer.getvalue()


def _unpack(data: bytes, directory: str) -> None:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        tar.extractall(directory, filter="data")


# --- the trainable -------------------------------------------------------------


class GeneticMADDPG(tune.Trainable):
    """Distributed genetic MADDPG (Zhou and Chen): P MADDPG members, best critics shared.

    `setup` starts `population_size` Ray actors, each holding a MADDPG built
    from the base config (member i with seed + i). Each `train()`:

    1. trains every member for one MADDPG iteration, in parallel (a member
       lost meanwhile is replaced by a copy of the best: `_replace`);
    2. when every member has sampled `critic_sync_interval` env steps since
       the last sync, picks the member with the best `sync_metric` and loads
       its critics and target critics (all agents') into every other member;
       actors are never synced;
    3. reports:

       - `members/<i>/...`: member i's `episode_return_mean`,
         `policy_reward_mean`, `num_env_steps_sampled_lifetime`,
         `sync_metric_value` (the metric the rule reads), `node_ip` and
         `being_replaced` (1 while its replacement waits to be placed);
       - `best_member`: the member with the best metric this iteration;
       - `episode_return_mean` and `env_runners/...`: the best member's;
       - `num_critic_syncs`, `critic_synced_this_iter`,
         `last_critic_sync_source` (the member copied from; -1 before any),
         `num_member_replacements`;
       - `num_env_steps_sampled_lifetime` and `num_env_steps_sampled_this_iter`:
         SUMS over members (the population's env steps);
         `num_env_steps_sampled_lifetime_per_member`: the smallest member's count.

    Checkpoints hold one RLlib checkpoint per member in `member_<i>/` (each
    loadable alone with `Algorithm.from_checkpoint`) and the sync counters.
    """

    def __init__(self, config: Union[Dict, AlgorithmConfig, None] = None, **kwargs):
        # Tune passes a dict; AlgorithmConfig.build_algo() passes the config object.
        if isinstance(config, AlgorithmConfig):
            config = config.to_dict()
        super().__init__(config=config, **kwargs)

    @classmethod
    def get_default_config(cls) -> GeneticMADDPGConfig:
        return GeneticMADDPGConfig()

    @classmethod
    def default_resource_request(cls, config: Union[Dict, AlgorithmConfig]) -> PlacementGroupFactory:
        """This trainable only coordinates: its bundle holds no CPU, only
        `custom_resources_for_main_process` (e.g. a label that keeps it on the
        head node). Then, per member, `member_resources` plus the bundles of the
        member's remote env runners."""
        cfg = _as_config(config)
        base = MADDPG.default_resource_request(cfg.member_config_dict(0)).bundles
        per_member = [member_bundle(cfg.member_resources)] + base[1:]
        head = dict(cfg.custom_resources_for_main_process or {})
        return PlacementGroupFactory(
            [head] + per_member * cfg.population_size, strategy=cfg.placement_strategy
        )

    def setup(self, config: Dict[str, Any]) -> None:
        raw = _as_config(config)
        cfg = raw.copy(copy_frozen=False)
        cfg.validate()
        self.algo_config = cfg
        self.population_size = cfg.population_size
        bundle = member_bundle(cfg.member_resources)
        options = {
            "num_cpus": bundle.pop("CPU"),
            "num_gpus": bundle.pop("GPU", 0.0),
            "memory": bundle.pop("memory", None),
            "resources": bundle,
        }
        self._remote_member = ray.remote(Member).options(**options)
        self._member_configs = [raw.member_config_dict(i) for i in range(self.population_size)]
        self.members = [self._remote_member.remote(config) for config in self._member_configs]
        try:
            ray.get([member.ready.remote() for member in self.members])
        except Exception:
            self.cleanup()
            raise
        self.num_critic_syncs = 0
        self.last_sync_source = -1
        self.steps_since_sync = [0] * self.population_size
        self.steps_lifetime = [0] * self.population_size
        # Lost members: index -> (its replacement's restore, the member it copies), until placed.
        self.replacing: Dict[int, Tuple[ray.ObjectRef, int]] = {}
        self.num_member_replacements = 0
        self._reported = [0] * self.population_size  # each member's own env-step count (None: a fresh copy)
        self._metrics = [math.nan] * self.population_size
        self._last_progress = 0.0

    def step(self) -> Dict[str, Any]:
        self._bring_members_back()
        results = self._train_members([i for i in range(self.population_size) if i not in self.replacing])
        steps_this_iter = 0
        for i, result in results.items():
            lifetime = int(result["num_env_steps_sampled_lifetime"])
            # A replacement reports its source's count at first: only its own steps are new.
            new = int(result.get("num_env_steps_sampled_this_iter", 0)) if self._reported[i] is None \
                else lifetime - self._reported[i]
            self._reported[i] = lifetime
            self.steps_since_sync[i] += new
            self.steps_lifetime[i] += new
            steps_this_iter += new

        metrics = [read_metric(results[i], self.algo_config.sync_metric) if i in results else math.nan
                   for i in range(self.population_size)]
        self._metrics = metrics
        synced = False
        interval = self.algo_config.critic_sync_interval
        if interval is not None and min(self.steps_since_sync[i] for i in results) >= interval:
            source = self.sync_critics(metrics)
            if source is not None:
                synced = True
                self.num_critic_syncs += 1
                self.last_sync_source = source
                self.steps_since_sync = [0] * self.population_size

        best = best_member(metrics)
        shown = results[best if best is not None else min(results)]
        members = {}
        for i, metric in enumerate(metrics):
            runners = results[i]["env_runners"] if i in results else {}
            members[str(i)] = {
                "episode_return_mean": _float(runners.get("episode_return_mean")),
                "policy_reward_mean": {
                    pid: _float(v) for pid, v in (runners.get("policy_reward_mean") or {}).items()
                },
                "num_env_steps_sampled_lifetime": self.steps_lifetime[i],
                SYNC_METRIC_VALUE: metric,
                "node_ip": results[i].get("node_ip") if i in results else None,
                BEING_REPLACED: int(i in self.replacing),
            }
        return {
            MEMBERS: members,
            BEST_MEMBER: -1 if best is None else best,
            "episode_return_mean": _float(shown["env_runners"].get("episode_return_mean")),
            "env_runners": shown["env_runners"],
            NUM_CRITIC_SYNCS: self.num_critic_syncs,
            CRITIC_SYNCED: int(synced),
            SYNC_SOURCE: self.last_sync_source,
            NUM_REPLACEMENTS: self.num_member_replacements,
            "num_env_steps_sampled_lifetime": sum(self.steps_lifetime),
            "num_env_steps_sampled_this_iter": steps_this_iter,
            STEPS_PER_MEMBER: min(self.steps_lifetime),
        }

    def _train_members(self, active: List[int]) -> Dict[int, Dict[str, Any]]:
        """One iteration of each active member: {index: result} of those that came back.

        A member lost meanwhile (e.g. with its node) held its algorithm only in
        its actor; it is replaced by a copy of the best member that trained
        (`_replace`). Only when none came back is the run lost: an error names
        the fix (resume from the last checkpoint)."""
        refs = {i: self.members[i].train.remote() for i in active}
        results, lost = {}, {}
        for i, ref in refs.items():
            try:
                results[i] = ray.get(ref)
            except ray.exceptions.RayActorError as error:
                lost[i] = error
        if lost and not results:
            from rllib_maddpg.fault_tolerance import node_of

            where = ", ".join(f"member {i} on node {node_of(self.members[i])}" for i in lost)
            raise RuntimeError(
                f"GeneticMADDPG lost every member it was training ({where}; "
                f"{type(next(iter(lost.values()))).__name__}): none is left to copy, and their state "
                "since the last checkpoint cannot be recovered. Continue from the last checkpoint: "
                "`rllib train file <file> --resume` (or Tune's FailureConfig(max_failures=N), which "
                "restores the trial by itself); the members are placed again once nodes with "
                f"member_resources={self.algo_config.member_resources} are up.")
        metrics = [read_metric(results[i], self.algo_config.sync_metric) if i in results else math.nan
                   for i in range(self.population_size)]
        for i, error in lost.items():
            self._replace(i, error, metrics)
        return results

    def _replace(self, i: int, error: Exception, metrics: Sequence[float]) -> None:
        """A new actor for lost member i, restored from the best member with a finite metric
        (else the lowest active one): its weights, critics, optimizer states and counters,
        its replay buffer only with store_buffer_in_checkpoints. The selection step of a
        genetic algorithm, done early; Ray places the actor once a node with
        `member_resources` has room, and it trains again from the next step after that."""
        from rllib_maddpg.fault_tolerance import node_of

        candidates = [m if k not in self.replacing and k != i else math.nan for k, m in enumerate(metrics)]
        source = best_member(candidates)
        if source is None:
            source = min(k for k in range(self.population_size) if k not in self.replacing and k != i)
        node = node_of(self.members[i])
        archive = self.members[source].save_to_bytes.remote()
        self.members[i] = self._remote_member.remote(self._member_configs[i])
        self.replacing[i] = (self.members[i].restore_from_bytes.remote(archive), source)
        self._reported[i] = None
        self.num_member_replacements += 1
        logger.error(
            "GeneticMADDPG lost member %d on node %s (%s): it is replaced by a copy of member %d, which "
            "trains once Ray places it on a node with member_resources=%s; the others go on meanwhile.",
            i, node, type(error).__name__, source, self.algo_config.member_resources)

    def _bring_members_back(self) -> None:
        """Replacements placed and restored since the last step train again (never waits)."""
        now = time.time()
        for i, (ref, source) in list(self.replacing.items()):
            done, _ = ray.wait([ref], timeout=0)
            if not done:
                if now - self._last_progress >= PROGRESS_EVERY_S:
                    self._last_progress = now
                    logger.warning("GeneticMADDPG member %d (a copy of member %d) waits to be placed on a "
                                   "node with member_resources=%s", i, source, self.algo_config.member_resources)
                continue
            del self.replacing[i]
            try:
                ray.get(ref)
            except ray.exceptions.RayActorError as error:  # lost before it trained: copy anew
                self._replace(i, error, self._metrics)
                continue
            logger.warning("GeneticMADDPG member %d is back (a copy of member %d) and trains again", i, source)

    def sync_critics(self, metrics: Sequence[float]) -> Optional[int]:
        """Applies `critic_sync` to the member actors; returns the source member (or None).

        The best member's weights go member to member through Ray's object
        store (read once, never through this process).
        """
        pending = []

        def set_weights(i, weights_ref):
            ref = self.members[i].set_critic_weights.remote(weights_ref)
            if i not in self.replacing:  # a replacement runs it after its restore, once placed: not awaited
                pending.append(ref)

        best = critic_sync(
            metrics, lambda i: self.members[i].get_critic_weights.remote(), set_weights
        )
        ray.get(pending)
        return best

    def active_members(self) -> List[Any]:
        """The member actors that train now (not a replacement still waiting to be placed)."""
        return [member for i, member in enumerate(self.members) if i not in self.replacing]

    def foreach_member(self, fn: Callable[[MADDPG], Any]) -> List[Any]:
        """fn(member's MADDPG algorithm) on every active member, in parallel; the returns in order."""
        return ray.get([member.apply.remote(fn) for member in self.active_members()])

    def evaluate(self) -> Dict[str, Any]:
        """RLlib's `Algorithm.evaluate()` on every member: {"members": {"<i>": result}}.

        Set `evaluation(evaluation_duration=..., evaluation_config={"explore": False})`
        on the base config to choose the episodes.
        """
        active = [i for i in range(self.population_size) if i not in self.replacing]
        results = ray.get([self.members[i].evaluate.remote() for i in active])
        return {MEMBERS: {str(i): result for i, result in zip(active, results)}}

    def save_checkpoint(self, checkpoint_dir: str) -> str:
        # A member still being replaced is saved as the copy it will be.
        sources = [self.replacing[i][1] if i in self.replacing else i for i in range(self.population_size)]
        archives = ray.get([self.members[k].save_to_bytes.remote() for k in sources])
        for i, data in enumerate(archives):
            directory = os.path.join(checkpoint_dir, f"member_{i}")
            os.makedirs(directory, exist_ok=True)
            _unpack(data, directory)
        state = {
            "population_size": self.population_size,
            "num_critic_syncs": self.num_critic_syncs,
            "last_sync_source": self.last_sync_source,
            "steps_since_sync": self.steps_since_sync,
            "steps_lifetime": self.steps_lifetime,
            "num_member_replacements": self.num_member_replacements,
        }
        with open(os.path.join(checkpoint_dir, _STATE_FILE), "w") as f:
            json.dump(state, f)
        return checkpoint_dir

    def load_checkpoint(self, checkpoint_dir: str) -> None:
        with open(os.path.join(checkpoint_dir, _STATE_FILE)) as f:
            state = json.load(f)
        if state["population_size"] != self.population_size:
            raise ValueError(
                f"the checkpoint {checkpoint_dir} holds {state['population_size']} members "
                f"but this GeneticMADDPG has population_size={self.population_size}: "
                "restore with the checkpoint's population_size."
            )
        ray.get([
            member.restore_from_bytes.remote(_pack(os.path.join(checkpoint_dir, f"member_{i}")))
            for i, member in enumerate(self.members)
        ])
        self.num_critic_syncs = state["num_critic_syncs"]
        self.last_sync_source = state["last_sync_source"]
        self.steps_since_sync = list(state["steps_since_sync"])
        self.steps_lifetime = list(state["steps_lifetime"])
        self.num_member_replacements = state.get("num_member_replacements", 0)
        # The members' own counters now: a member saved while being replaced holds its source's.
        self._reported = [None] * self.population_size

    def cleanup(self) -> None:
        members = getattr(self, "members", [])
        try:
            ray.get([member.stop.remote() for member in members], timeout=60)
        except Exception as e:  # noqa: BLE001 - a member that already died is fine here
            logger.warning("stopping GeneticMADDPG members: %s", e)
        for member in members:
            ray.kill(member)

