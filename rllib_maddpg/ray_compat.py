"""Every private Ray name rllib_maddpg uses, in one place, each pinned by a test.

Ray's private names change without notice between releases. Each function
below wraps one, says why no public path does the job, and has a test in
tests/unit/test_ray_compat.py that pins the behaviour relied on; after a Ray
upgrade, that test file says what broke and this module is the one to fix.
pyproject.toml pins Ray for this reason.

Protected members of `Algorithm` that a subclass overrides or uses, as RLlib's
own algorithms do (DQN, SAC), are listed in ALGORITHM_HOOKS and pinned by the
same test; they cannot move here because they are part of the class.
"""

import functools
import importlib
import inspect
import signal
from typing import Any, Callable, Dict, List, Optional, Tuple

from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig

# Algorithm members MADDPG overrides or reads: the hook that builds the replay
# buffer in setup, the per-iteration results the `fault_tolerance` stats join,
# the counters checkpointed with the algorithm, and its timers.
ALGORITHM_HOOKS = (
    "_get_env_id_and_creator",
    "_create_local_replay_buffer_if_necessary",
    "_compile_iteration_results_old_api_stack",
    "_counters",
    "_timers",
)


def env_id_and_creator(env: Any, config: AlgorithmConfig) -> Tuple[Optional[str], Callable]:
    """(env id, creator) for `config.env` as RLlib resolves it (registered name,
    gymnasium id, class path or class); creator(EnvContext) builds the env.
    Private: RLlib has no public function that resolves an env specifier.

    One change, which MADDPG's setup uses too (MADDPG._get_env_id_and_creator):
    RLlib builds a class path as `Cls(**env_config)` but a class as
    `Cls(env_config)`, so RLlib's own env classes, whose constructor takes one
    `config` dict (e.g. `ray.rllib.examples.envs.classes.multi_agent.MultiAgentPendulum`
    with env_config {num_agents: 2}), cannot be named in a YAML file. Where
    `Cls(**env_config)` does not bind to the constructor's signature, a class
    path is built as the class itself would be: `Cls(env_config)`."""
    if isinstance(env, str) and "." in env and not _is_registered_env(env):
        cls = _import_class(env)
        if cls is not None and not _takes_keywords(cls, config.env_config):
            return env, functools.partial(_build, cls)
    return Algorithm._get_env_id_and_creator(env, config)


def _is_registered_env(name: str) -> bool:
    from ray.tune.registry import ENV_CREATOR, _global_registry
    return _global_registry.contains(ENV_CREATOR, name)


def _import_class(path: str) -> Optional[type]:
    module, _, name = path.rpartition(".")
    try:
        value = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return None  # not a class path: RLlib's own resolution (and its error) applies
    return value if isinstance(value, type) else None


def _takes_keywords(cls: type, env_config) -> bool:
    """Whether `cls(**env_config)` (RLlib's class-path call) binds to the constructor."""
    try:
        inspect.signature(cls).bind(**{str(k): v for k, v in dict(env_config or {}).items()})
    except TypeError:
        return False
    except ValueError:  # no signature to inspect: leave it to RLlib
        return True
    return True


def _build(cls: type, env_context):
    return cls(env_context)


def translate_config_key(key: str) -> str:
    """The AlgorithmConfig attribute a config-dict key sets ("lambda" -> "lambda_",
    "num_workers" -> "num_env_runners"), without deprecation warnings.
    Private: update_from_dict does this translation internally only."""
    return AlgorithmConfig._translate_special_keys(key, warn_deprecated=False)


def on_env_runners_recreated(algo: Algorithm, env_runner_group, indices: List[int]) -> None:
    """Runs the `on_env_runners_recreated` (and old `on_workers_recreated`)
    callbacks as Algorithm.step does after its own restore. Private: the only
    code that builds these callbacks' arguments."""
    algo._make_on_env_runners_recreated_callbacks(
        config=algo.config, env_runner_group=env_runner_group, restored_env_runner_indices=indices)


def worker_manager(env_runner_group):
    """The group's FaultTolerantActorManager. Private: EnvRunnerGroup exposes
    neither the actor handles by id nor per-runner health; the manager's own
    methods used on it (actors, actor_ids, is_actor_healthy, foreach_actor) are public."""
    return env_runner_group._worker_manager


def take_restored_actors(manager) -> List[int]:
    """The ids the manager marked healthy again since the last call, and forgets
    them. Private: the public probe_unhealthy_actors returns the same set but
    first pings every runner still down and waits for the answers, which is
    what RunnerRecovery avoids (fault_tolerance.py)."""
    restored = list(manager._restored_actors)
    manager._restored_actors.clear()
    return restored


def actor_table_row(actor) -> Dict:
    """The actor's row in the GCS actor table ({} if it cannot be read): its
    State ("ALIVE", "RESTARTING", "DEAD") and Address.NodeID. Private:
    ray.util.state.get_actor needs the dashboard's state API, which a cluster
    started with include_dashboard=False (our tests, many users) does not run."""
    try:
        from ray._private import state

        return state.actors(actor._actor_id.hex()) or {}
    except Exception:  # a diagnostic only: never fail training over it
        return {}


def _import_attribute(module: str, name: str):
    return getattr(importlib.import_module(module), name)


class _LazyTrainable:
    """Pickles as "import `module` and return its `name`": what Tune's registry
    stores (pickled) and returns on lookup, without importing `module` now."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name

    def __reduce__(self):
        return _import_attribute, (self.module, self.name)


def register_lazy_trainable(name: str, module: str, attribute: Optional[str] = None) -> None:
    """Registers `module.attribute` as Tune trainable `name` without importing
    `module`: Tune's lookup (get_trainable_cls, `tune.Tuner(name)`, YAML `run:`)
    unpickles the registry's entry, which imports it then. Private: the public
    register_trainable takes only the class itself; the registry stores it
    pickled, by reference, and `_global_registry.register` is what it calls."""
    from ray.tune.registry import TRAINABLE_CLASS, _global_registry

    _global_registry.register(TRAINABLE_CLASS, name, _LazyTrainable(module, attribute or name))


def end_tune_run() -> None:
    """Ends the running Tuner.fit() in this process as Tune's own Ctrl-C does: its loop
    stops, records the experiment state one last time and stops the trials' actors.
    Private: the loop stops on an event that only Tune's signal handler sets, which
    tune.run installs for SIGUSR1 always (and for SIGINT unless
    TUNE_DISABLE_SIGINT_HANDLER=1); it is called here directly. Outside a fit()
    (no such handler) this raises KeyboardInterrupt."""
    handler = signal.getsignal(signal.SIGUSR1)
    if not (callable(handler) and getattr(handler, "__module__", None) == "ray.tune.tune"):
        raise KeyboardInterrupt
    handler(signal.SIGUSR1, None)
