"""Pins each private Ray behaviour rllib_maddpg relies on (rllib_maddpg/ray_compat.py).

After a Ray upgrade, a failure here names the private name that changed;
ray_compat.py is the one module to fix.
"""

import inspect
import subprocess
import sys
import types

import pytest
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.env.env_context import EnvContext
from ray.rllib.env.env_runner_group import EnvRunnerGroup
from ray.rllib.utils.actor_manager import FaultTolerantActorManager

from rllib_maddpg import ray_compat

pytestmark = pytest.mark.unit


def test_algorithm_hooks_exist():
    for name in ("_create_local_replay_buffer_if_necessary", "_compile_iteration_results_old_api_stack"):
        assert callable(getattr(Algorithm, name)), name
    # Algorithm calls the hooks MADDPG overrides (the replay buffer in setup, the
    # results in step) and sets the counters and timers MADDPG reads and checkpoints.
    assert "self._create_local_replay_buffer_if_necessary(" in inspect.getsource(Algorithm.setup)
    source = inspect.getsource(Algorithm)
    for name in ray_compat.ALGORITHM_HOOKS:
        assert f"self.{name}" in source, name


def test_env_id_and_creator_builds_the_env_from_an_env_context():
    from rllib_maddpg import MADDPGConfig

    config = MADDPGConfig().environment("mpe/simple_spread")
    env_id, creator = ray_compat.env_id_and_creator(config.env, config)
    assert env_id == "mpe/simple_spread"
    env = creator(EnvContext(config.env_config, worker_index=0, num_workers=0))
    try:
        assert len(env.reset(seed=0)[0]) == 3
    finally:
        env.close()


@pytest.mark.parametrize("key, attribute", [("lambda", "lambda_"), ("num_workers", "num_env_runners"),
                                            ("callbacks", "callbacks_class"), ("gamma", "gamma")])
def test_translate_config_key(key, attribute, recwarn):
    assert ray_compat.translate_config_key(key) == attribute
    # A deprecated key is returned as is, without RLlib's deprecation error.
    assert ray_compat.translate_config_key("min_iter_time_s") == "min_iter_time_s"


def test_on_env_runners_recreated_calls_the_callbacks():
    calls = []

    class Callbacks:
        def on_env_runners_recreated(self, **kwargs):
            calls.append(("new", kwargs["env_runner_group"], kwargs["env_runner_indices"]))

        def on_workers_recreated(self, **kwargs):
            calls.append(("old", kwargs["worker_set"], kwargs["worker_ids"]))

    algo = types.SimpleNamespace(
        callbacks=Callbacks(),
        config=types.SimpleNamespace(callbacks_on_env_runners_recreated=None, in_evaluation=False))
    algo._make_on_env_runners_recreated_callbacks = types.MethodType(
        Algorithm._make_on_env_runners_recreated_callbacks, algo)
    ray_compat.on_env_runners_recreated(algo, "group", [2])
    assert calls == [("new", "group", [2]), ("old", "group", [2])]


def test_env_runner_group_keeps_its_actor_manager_there():
    assert "self._worker_manager = FaultTolerantActorManager(" in inspect.getsource(EnvRunnerGroup.__init__)
    group = types.SimpleNamespace(_worker_manager="manager")
    assert ray_compat.worker_manager(group) == "manager"


def test_the_manager_collects_restored_actors_and_counts_restarts():
    manager = FaultTolerantActorManager()
    for name in ("actors", "actor_ids", "is_actor_healthy", "set_actor_state", "foreach_actor",
                 "total_num_restarts"):
        assert callable(getattr(manager, name)), name
    assert "mark_healthy" in inspect.signature(manager.foreach_actor).parameters
    # foreach_actor(mark_healthy=True) counts a restart where it marks an actor healthy.
    assert "self._num_actor_restarts += 1" in inspect.getsource(FaultTolerantActorManager._fetch_result)
    manager.add_actors([object(), object()])
    manager.set_actor_state(0, healthy=False)
    manager.set_actor_state(1, healthy=False)
    manager.set_actor_state(1, healthy=True)
    assert ray_compat.take_restored_actors(manager) == [1]
    assert ray_compat.take_restored_actors(manager) == []


def test_register_lazy_trainable_imports_on_lookup():
    # In a fresh process: the module must not be imported by registering it.
    code = (
        "import sys\n"
        "from ray.tune.registry import get_trainable_cls\n"
        "from rllib_maddpg import ray_compat\n"
        "ray_compat.register_lazy_trainable('LazyNag', 'tabnanny', 'NannyNag')\n"
        "assert 'tabnanny' not in sys.modules\n"
        "cls = get_trainable_cls('LazyNag')\n"
        "import tabnanny\n"
        "assert cls is tabnanny.NannyNag, cls\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.integration
def test_actor_table_row_names_state_and_node(ray_local):
    ray = ray_local

    @ray.remote(num_cpus=0)
    class Probe:
        def ping(self):
            return "ok"

    actor = Probe.remote()
    ray.get(actor.ping.remote())
    row = ray_compat.actor_table_row(actor)
    assert row["State"] == "ALIVE"
    assert row["Address"]["NodeID"] == ray.get_runtime_context().get_node_id()
    ray.kill(actor)
    assert ray_compat.actor_table_row(object()) == {}


def test_end_tune_run_sets_the_event_tunes_loop_stops_on():
    import signal

    from ray.tune import tune as tune_module

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGUSR1)}
    try:
        with pytest.raises(KeyboardInterrupt):  # no fit() running: nothing to end but the process
            signal.signal(signal.SIGUSR1, signal.SIG_DFL)
            ray_compat.end_tune_run()
        # What tune.run installs: SIGUSR1 always, SIGINT unless TUNE_DISABLE_SIGINT_HANDLER=1;
        # its loop runs while the returned event is not set.
        event = tune_module._setup_signal_catching()
        assert signal.getsignal(signal.SIGUSR1).__module__ == "ray.tune.tune"
        assert "not experiment_interrupted_event.is_set()" in inspect.getsource(tune_module.run)
        assert not event.is_set()
        ray_compat.end_tune_run()
        assert event.is_set()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def test_a_class_path_env_is_built_as_its_class_with_the_env_config_dict():
    # RLlib's class path calls Cls(**env_config), which RLlib's own env classes
    # (constructor takes one config dict) reject; MADDPG builds Cls(env_config).
    from rllib_maddpg import MADDPGConfig
    from rllib_maddpg.maddpg import MADDPG

    path = "ray.rllib.examples.envs.classes.multi_agent.MultiAgentPendulum"
    config = MADDPGConfig().environment(path, env_config={"num_agents": 2})
    with pytest.raises(TypeError, match="num_agents"):
        Algorithm._get_env_id_and_creator(path, config)[1](EnvContext(config.env_config, worker_index=0))
    for resolve in (ray_compat.env_id_and_creator, MADDPG._get_env_id_and_creator):
        env_id, creator = resolve(path, config)
        assert env_id == path
        env = creator(EnvContext(config.env_config, worker_index=0))
        assert sorted(env.reset(seed=0)[0]) == [0, 1]
    # A required config argument and an empty env_config: Cls({}), where RLlib calls Cls().
    path = "ray.rllib.examples.envs.classes.multi_agent.two_step_game.TwoStepGame"
    config = MADDPGConfig().environment(path)
    env = MADDPG._get_env_id_and_creator(path, config)[1](EnvContext({}, worker_index=0))
    assert sorted(env.reset(seed=0)[0]) == [0, 1]
    # Classes that take env_config's keys as keywords keep RLlib's Cls(**env_config).
    config = MADDPGConfig().environment("rllib_maddpg.envs.PettingZooEnv",
                                        env_config={"pettingzoo_env": "mpe2.simple_spread_v3", "N": 2})
    _, creator = ray_compat.env_id_and_creator(config.env, config)
    env = creator(EnvContext(config.env_config, worker_index=0))
    try:
        assert len(env.reset(seed=0)[0]) == 2
    finally:
        env.close()
