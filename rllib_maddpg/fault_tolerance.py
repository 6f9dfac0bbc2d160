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
"""

import logging
import time
from typing import Dict, List

import ray
from ray.exceptions import ActorDiedError, RayError

logger = logging.getLogger(__name__)

# Counters (checkpointed with the algorithm's other counters).
DEGRADED_TIME_S = "fault_tolerance_degraded_time_s"
NUM_RUNNER_RESTORES = "fault_tolerance_num_env_runner_restores"
ENV_STEPS_ON_DRIVER = "fault_tolerance_env_steps_sampled_on_driver"
NUM_LEARNER_FALLBACKS = "fault_tolerance_num_learner_fallbacks"
PROGRESS_EVERY_S = 30.0


class RunnerRecovery:
    """Non-blocking health probes of an env runner group, and time spent with runners down."""

    def __init__(self, group, counters, runner_resources: Dict[str, float]):
        self.group = group
        self.counters = counters
        self.runner_resources = runner_resources
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
        return self.group._worker_manager

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
        restored = []
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
                manager.set_actor_state(i, healthy=True)
                manager._num_actor_restarts += 1  # as RLlib's own probe counts a restart
                restored.append(i)
        # Runners that came back through any other answer (RLlib marks them itself).
        restored += [i for i in manager._restored_actors if i not in restored]
        manager._restored_actors.clear()
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

    def stats(self) -> Dict[str, float]:
        return {
            "num_env_runners_down": len(self.down()),
            "degraded_time_s": self.counters[DEGRADED_TIME_S] + self.degraded_for(),
            "num_env_runner_restores": self.counters[NUM_RUNNER_RESTORES],
            "env_steps_sampled_on_driver": self.counters[ENV_STEPS_ON_DRIVER],
            "num_learner_fallbacks": self.counters[NUM_LEARNER_FALLBACKS],
        }


def _actor_info(actor) -> Dict:
    """The actor's row in the GCS actor table ({} if it cannot be read)."""
    try:
        from ray._private import state

        return state.actors(actor._actor_id.hex()) or {}
    except Exception:  # a diagnostic only: never fail training over it
        return {}


def node_of(actor) -> str:
    """The node an actor last ran on ('?' if unknown)."""
    return (_actor_info(actor).get("Address") or {}).get("NodeID") or "?"


def _state_of(actor) -> str:
    return _actor_info(actor).get("State", "?")


def runner_resources(config) -> Dict[str, float]:
    """The Ray resources one remote env runner asks for."""
    resources = {"CPU": config.num_cpus_per_env_runner}
    if config.num_gpus_per_env_runner:
        resources["GPU"] = config.num_gpus_per_env_runner
    resources.update(config.custom_resources_per_env_runner or {})
    return resources
