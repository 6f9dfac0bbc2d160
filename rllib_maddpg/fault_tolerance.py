"""Env runners lost with their node: bring them back without stopping training.

RLlib's old stack restores failed env runners at the start of every training
step (`Algorithm.restore_env_runners`) by pinging each and waiting up to
`env_runner_health_probe_timeout_s` (30 s) for an answer. A runner whose node
is lost is "restarting" until a node with its resources joins; each ping
then fails after about 2 s, the step finds no healthy runner and returns
nothing, and after `num_consecutive_env_runner_failures_tolerance` (100) such
steps, about 4 minutes of doing nothing, RLlib ends the run. A replacement
node that joins later is never used.

`RunnerRecovery` pings without waiting: each call sends one ping to every
runner that is down and has none in flight, and collects the answers that
have arrived. While no remote runner is healthy, a training step polls for
up to `env_runner_wait_timeout_s` (60 s: a crashed process is back within
seconds), then samples with the driver's own env runner
(`sample_on_driver_when_runners_down`, default True; MADDPG's lockstep
sampling is the same there) until one is back, or, with that False, raises
an error that names the runners, the node they were on, the resources they
need, and the fix. A runner that is dead for good (restarts used up, killed
without restart) is not waited for: RLlib's failure count ends the run, as
before. Progress lines say what is down and what it waits for; results
report `fault_tolerance/degraded_time_s` and the env steps sampled on the
driver next to RLlib's `num_remote_worker_restarts`.

Learner actors lost (learners.py) are the other fault: training goes on with
the learner in the driver process, and new learner actors are asked for at
once; Ray places them when a node with `learner_resources` has room (a node
that returns, or one the autoscaler starts), and at the first training step
after all are up they get the driver's policies and learn again.

`FaultTolerance` is the part of the MADDPG Algorithm that does all this; the
algorithm (maddpg.py) asks it two things: whether the env runners stay down
(`env_runners_stay_down`, then `sample_while_runners_down`), to take over
learning when learner actors are lost (`fall_back_to_local_learner`), and to
hand it back once their replacements are placed (`bring_learners_back`).
"""

import logging
import time
from typing import Dict, List

import ray
from ray.exceptions import ActorDiedError, RayError
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.utils.annotations import override

from rllib_maddpg.learners import PerAgentLearners, make_learners
from rllib_maddpg.ray_compat import (
    actor_table_row, on_env_runners_recreated, take_restored_actors, worker_manager,
)

logger = logging.getLogger(__name__)

# Counters (checkpointed with the algorithm's other counters).
DEGRADED_TIME_S = "fault_tolerance_degraded_time_s"
NUM_RUNNER_RESTORES = "fault_tolerance_num_env_runner_restores"
ENV_STEPS_ON_DRIVER = "fault_tolerance_env_steps_sampled_on_driver"
NUM_LEARNER_FALLBACKS = "fault_tolerance_num_learner_fallbacks"
NUM_LEARNER_RETURNS = "fault_tolerance_num_learner_returns"
LEARNERS_DOWN_TIME_S = "fault_tolerance_learners_down_time_s"
PROGRESS_EVERY_S = 30.0


class RunnerRecovery:
    """Non-blocking health probes of an env runner group, and time spent with runners down."""

    def __init__(self, group, counters, runner_resources: Dict[str, float], probe_timeout_s: float = 30.0):
        self.group = group
        self.counters = counters
        self.runner_resources = runner_resources
        self.probe_timeout_s = probe_timeout_s
        self._pings: Dict[int, ray.ObjectRef] = {}
        # runner id -> the node it last ran on while healthy. Read at start and
        # after each restore: once a runner is restarting, the GCS shows where
        # it waits to be placed instead.
        self._nodes: Dict[int, str] = {}
        self._remember_nodes(self.group.healthy_env_runner_ids())
        self.dead: set = set()  # runners that can never come back (restarts used up, ray.kill)
        self._degraded_since = None
        self._last_progress = 0.0

    def _remember_nodes(self, ids: List[int]) -> None:
        actors = self._manager.actors()
        self._nodes.update({i: node_of(actors[i]) for i in ids})

    @property
    def _manager(self):
        return worker_manager(self.group)

    def down(self) -> List[int]:
        manager = self._manager
        return [i for i in manager.actor_ids() if not manager.is_actor_healthy(i)]

    def poll(self) -> List[int]:
        """Runners that answered a ping since the last call, marked healthy (never waits)."""
        manager, down = self._manager, self.down()
        self._pings = {i: ref for i, ref in self._pings.items() if i in down}
        for i in down:
            if i not in self._pings and i not in self.dead:
                self._pings[i] = manager.actors()[i].ping.remote()
        answered = []
        if self._pings:
            ready, _ = ray.wait(list(self._pings.values()), num_returns=len(self._pings), timeout=0)
            for i, ref in list(self._pings.items()):
                if ref not in ready:
                    continue
                del self._pings[i]
                try:
                    ray.get(ref)
                except RayError as error:
                    # Restarting or not placed yet: ping again next call. Dead
                    # (the GCS says so, not only the ping): never again.
                    if isinstance(error, ActorDiedError) and _state_of(manager.actors()[i]) == "DEAD":
                        self.dead.add(i)
                        logger.error("env runner %d is dead for good (max_num_env_runner_restarts used "
                                     "up, or killed without restart): %s", i, error)
                    continue
                answered.append(i)
        if answered:
            # Alive: one more ping through the manager marks them healthy and
            # counts the restarts (num_remote_worker_restarts), as RLlib's probe does.
            manager.foreach_actor(lambda actor: actor.ping(), remote_actor_ids=answered, healthy_only=False,
                                  timeout_seconds=self.probe_timeout_s, mark_healthy=True)
        # Those, and runners that came back through any other answer (RLlib marks them itself).
        restored = take_restored_actors(manager)
        self._remember_nodes(restored)
        self.counters[NUM_RUNNER_RESTORES] += len(restored)
        return restored

    def note_health(self) -> None:
        """Starts or ends a degraded period; a progress line every PROGRESS_EVERY_S while in one."""
        now, down = time.time(), self.down()
        if down and self._degraded_since is None:
            self._degraded_since = self._last_progress = now
            logger.warning("env runners %s are down: %s", down, self.waiting_for(down))
        elif down and now - self._last_progress >= PROGRESS_EVERY_S:
            self._last_progress = now
            logger.warning("env runners %s down for %.0f s: %s", down, now - self._degraded_since,
                           self.waiting_for(down))
        elif not down and self._degraded_since is not None:
            logger.warning("all env runners are back after %.1f s", now - self._degraded_since)
            self.counters[DEGRADED_TIME_S] += now - self._degraded_since
            self._degraded_since = None

    def degraded_for(self) -> float:
        return 0.0 if self._degraded_since is None else time.time() - self._degraded_since

    def waiting_for(self, down: List[int]) -> str:
        nodes = sorted({self._nodes.get(i, "?") for i in down})
        return (f"they ran on node(s) {', '.join(nodes)} and wait to be placed on a live node "
                f"with {self.runner_resources}")

    def stats(self, learners_down_for: float = 0.0) -> Dict[str, float]:
        return {
            "num_env_runners_down": len(self.down()),
            "degraded_time_s": self.counters[DEGRADED_TIME_S] + self.degraded_for(),
            "num_env_runner_restores": self.counters[NUM_RUNNER_RESTORES],
            "env_steps_sampled_on_driver": self.counters[ENV_STEPS_ON_DRIVER],
            "num_learner_fallbacks": self.counters[NUM_LEARNER_FALLBACKS],
            "num_learner_returns": self.counters[NUM_LEARNER_RETURNS],
            "learners_down_time_s": self.counters[LEARNERS_DOWN_TIME_S] + learners_down_for,
        }


def node_of(actor) -> str:
    """The node an actor last ran on ('?' if unknown)."""
    return (actor_table_row(actor).get("Address") or {}).get("NodeID") or "?"


def _state_of(actor) -> str:
    return actor_table_row(actor).get("State", "?")


def runner_resources(config) -> Dict[str, float]:
    """The Ray resources one remote env runner asks for."""
    resources = {"CPU": config.num_cpus_per_env_runner}
    if config.num_gpus_per_env_runner:
        resources["GPU"] = config.num_gpus_per_env_runner
    resources.update(config.custom_resources_per_env_runner or {})
    return resources


class FaultTolerance:
    """The MADDPG Algorithm's fault tolerance: lost env runners and lost learner actors.

    A mixin placed before `Algorithm` in the bases; it needs the algorithm's
    `env_runner_group`, `config`, `_counters`, `learners` and `policies_by_id()`.
    """

    @override(Algorithm)
    def setup(self, config) -> None:
        super().setup(config)
        self._returning_learners = None  # replacements of lost learner actors, not yet placed
        self._recovery = RunnerRecovery(self.env_runner_group, self._counters, runner_resources(config),
                                        probe_timeout_s=config.env_runner_health_probe_timeout_s)

    def env_runners_stay_down(self) -> bool:
        """Whether no remote env runner is healthy and none came back within
        env_runner_wait_timeout_s (RLlib would otherwise skip the step)."""
        return (self.env_runner_group.num_healthy_remote_workers() == 0
                and self.config.restart_failed_env_runners and not self._wait_for_an_env_runner())

    def sample_while_runners_down(self):
        """Env steps sampled on the driver while the runners are down; None if
        none can come back; an error that names the fix if driver sampling is off."""
        recovery = self._recovery
        if set(recovery.down()) <= recovery.dead:
            # None can come back: RLlib counts failed steps and ends the run
            # after num_consecutive_env_runner_failures_tolerance of them.
            return None
        if not self.config.sample_on_driver_when_runners_down:
            raise RuntimeError(
                f"no env runner came back within env_runner_wait_timeout_s="
                f"{self.config.env_runner_wait_timeout_s}: {recovery.waiting_for(recovery.down())}. "
                "Start a node with these resources (`ray start --address=<head> --resources=...`), "
                "or set sample_on_driver_when_runners_down=True to sample on the driver meanwhile, "
                "or raise env_runner_wait_timeout_s; `rllib train file ... --resume` continues "
                "from the last checkpoint.")
        # Degraded: the same lockstep sampling, in this process, until one is back.
        batch = self.env_runner_group.local_env_runner.sample()
        self._counters[ENV_STEPS_ON_DRIVER] += batch.env_steps()
        return batch

    def _wait_for_an_env_runner(self) -> bool:
        """Whether an env runner is back: polls the lost ones (without blocking on
        any) until env_runner_wait_timeout_s have passed since they went down."""
        group, recovery = self.env_runner_group, self._recovery
        recovery.note_health()
        while recovery.degraded_for() <= self.config.env_runner_wait_timeout_s:
            restored = self.restore_env_runners(group)
            if restored:
                on_env_runners_recreated(self, group, restored)
            if group.num_healthy_remote_workers() > 0:
                return True
            if set(recovery.down()) <= recovery.dead:
                return False
            time.sleep(0.5)
        return False

    @override(Algorithm)
    def restore_env_runners(self, env_runner_group) -> List[int]:
        """RLlib's restore, with pings that never wait (RunnerRecovery)."""
        recovery = getattr(self, "_recovery", None)
        if recovery is None or env_runner_group is not self.env_runner_group:
            return super().restore_env_runners(env_runner_group)
        restored = recovery.poll()
        if restored:
            # As RLlib does: the restarted runners get the driver's runner state (weights).
            self._counters["total_num_restored_workers"] += len(restored)
            state = env_runner_group.local_env_runner.get_state()
            for policy_state in state["policy_states"].values():
                policy_state.pop("connector_configs", None)
            state_ref = ray.put(state)
            env_runner_group.foreach_env_runner(
                lambda runner: runner.set_state(ray.get(state_ref)), remote_worker_ids=restored,
                local_env_runner=False, timeout_seconds=self.config.env_runner_restore_timeout_s,
            )
        recovery.note_health()
        return restored

    @override(Algorithm)
    def _compile_iteration_results_old_api_stack(self, **kwargs) -> Dict:
        results = super()._compile_iteration_results_old_api_stack(**kwargs)
        returning = self._returning_learners
        results["fault_tolerance"] = self._recovery.stats(
            learners_down_for=0.0 if returning is None else time.time() - self._learners_lost_at)
        return results

    def fall_back_to_local_learner(self, error: Exception) -> None:
        """Learner actors lost (e.g. with their node): the driver learns until new ones are placed.

        Data-parallel learners hold no state of their own (the driver steps).
        Per-agent learners do: the survivors' states are pulled; a lost agent
        keeps its current actor and its critic and optimizer state as last
        pulled (the last checkpoint, or the start of training)."""
        lost = []
        if isinstance(self.learners, PerAgentLearners):
            lost = self.learners.pull_surviving_states(self.policies_by_id())
        nodes = sorted({node_of(actor) for actor in self.learners.actors().values()})
        logger.error(
            "learner actors lost (%s; they ran on node(s) %s): training goes on with the local "
            "learner in this process%s. New learner actors wait to be placed on nodes with "
            "learner_resources=%s and take over once all are up.",
            type(error).__name__, ", ".join(nodes),
            f"; the critics of {lost} continue from their last checkpoint (or initial) state" if lost else "",
            dict(self.config.learner_resources))
        self._counters[NUM_LEARNER_FALLBACKS] += 1
        for actor in self.learners.actors().values():
            ray.kill(actor)  # the survivors too: the replacements are one set, placed together
        self.learners = None
        self._returning_learners = make_learners(self.config)
        self._learners_lost_at = self._learners_last_progress = time.time()

    def bring_learners_back(self) -> None:
        """Once every replacement learner actor is placed (checked without waiting), the
        driver's policies go to them and they learn again; a progress line every
        PROGRESS_EVERY_S while they wait."""
        returning = self._returning_learners
        if returning is None:
            return
        now = time.time()
        try:
            if not returning.placed():
                if now - self._learners_last_progress >= PROGRESS_EVERY_S:
                    self._learners_last_progress = now
                    logger.warning("learner actors down for %.0f s: learning in this process until new "
                                   "ones are placed on nodes with learner_resources=%s",
                                   now - self._learners_lost_at, dict(self.config.learner_resources))
                return
            if isinstance(returning, PerAgentLearners):
                returning.push_states(self.policies_by_id())
        except ray.exceptions.RayActorError as error:  # a replacement died before it was used: ask anew
            logger.error("a replacement learner actor was lost too (%s); asking for new ones", error)
            self._returning_learners = make_learners(self.config)
            return
        nodes = sorted({node_of(actor) for actor in returning.actors().values()})
        logger.warning("learner actors are back after %.1f s (node(s) %s): learning moves to them again",
                       now - self._learners_lost_at, ", ".join(nodes))
        self._counters[NUM_LEARNER_RETURNS] += 1
        self._counters[LEARNERS_DOWN_TIME_S] += now - self._learners_lost_at
        self.learners, self._returning_learners = returning, None
