"""A real two-node Ray cluster on this machine: env runners on the worker, the learner on the head.

Two `ray start --block` processes (`tests/local_cluster.py`: their own
temp dir and free ports) form the cluster the way cluster.yaml does it: the
head advertises `learner_node`, the worker `env_runner_node`, and token
authentication is on. Each node
advertises 2 logical CPUs: with 1 per node the CPU counts alone would force
the placement, and the test could not tell whether the custom resources do
it (without either request, PACK puts trainable and runner on one node;
checked). The work is the same either way: one trainable, one env runner.
The token is a fresh random one given to both nodes and the driver in
RAY_AUTH_TOKEN (RAY_AUTH_MODE=token), so the user's ~/.ray/auth_token is
neither read nor changed, and the GCS port, which listens on all interfaces,
is never open without authentication while the test runs.

`rllib train file tuned_examples/simple_spread.yaml --ray-address ...` then
trains 2 iterations, and the GCS actor table (it keeps finished actors)
shows where the env runner and the MADDPG trainable ran. Both nodes are
stopped by PID; processes left under the temp dir are killed by PID too.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from local_cluster import two_node_cluster

# ~80 s for the file on this 2-core machine; in the default run (and CI): it is the only
# real multi-node check. `pytest -m cluster` runs the cluster tests alone.
pytestmark = pytest.mark.cluster

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TIMEOUT = 300
TRAIN_CONFIG = {
    "num_env_runners": 1,
    "custom_resources_per_env_runner": {"env_runner_node": 1},
    "custom_resources_for_main_process": {"learner_node": 1},
    "min_sample_timesteps_per_iteration": 2000,
    "num_steps_sampled_before_learning_starts": 1000,
    "train_batch_size": 64,
}


def driver(env, address, code, timeout=120):
    """Runs `code` in a fresh driver process connected to the cluster; returns what it prints as JSON.

    A separate process: this one may already hold another Ray (the tests' ray_local).
    """
    script = textwrap.dedent(f"""\
        import json, time, ray
        ray.init(address={address!r}, log_to_driver=False, logging_level="ERROR")
        """) + textwrap.dedent(code)
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture
def two_nodes():
    # Each node advertises 2 logical CPUs (see the module docstring).
    with two_node_cluster({"learner_node": 1}, {"env_runner_node": 1}, num_cpus=2) as cluster:
        ids = driver(cluster.env, cluster.address, """\
            deadline = time.time() + 60
            while len([n for n in ray.nodes() if n["Alive"]]) < 2 and time.time() < deadline:
                time.sleep(0.5)
            alive = [n for n in ray.nodes() if n["Alive"]]
            print(json.dumps({
                "head": [n["NodeID"] for n in alive if "learner_node" in n["Resources"]],
                "worker": [n["NodeID"] for n in alive if "env_runner_node" in n["Resources"]],
            }))
            """)
        assert len(ids["head"]) == 1 and len(ids["worker"]) == 1, (ids, cluster.log_tail())
        yield {"address": cluster.address, "env": cluster.env, "head": ids["head"][0], "worker": ids["worker"][0]}


def test_env_runner_runs_on_the_worker_and_the_learner_on_the_head(two_nodes, tmp_path):
    cluster = two_nodes
    proc = subprocess.run(
        [sys.executable, "-m", "rllib_maddpg.cli", "train", "file",
         os.path.join(REPO, "tuned_examples", "simple_spread.yaml"),
         "--ray-address", cluster["address"], "--storage-path", str(tmp_path),
         "--stop", '{"training_iteration": 2}', "--config", json.dumps(TRAIN_CONFIG)],
        env=cluster["env"], capture_output=True, text=True, timeout=TIMEOUT,
    )
    assert proc.returncode == 0, f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    assert "iter    2 | env steps      4,000" in proc.stdout, proc.stdout
    assert "done: stop criterion reached (training_iteration >= 2)" in proc.stdout

    # Where each actor ran. The GCS actor table keeps finished actors; Ray's
    # public state API (ray.util.state) needs the full dashboard (ray[default]).
    actors = driver(cluster["env"], cluster["address"], """\
        from ray._private import state
        print(json.dumps([(a["ActorClassName"], a["Address"]["NodeID"])
                          for a in state.actors().values()]))
        """)
    runners = [node for cls, node in actors if cls == "LockstepEnvRunner"]
    trainables = [node for cls, node in actors if cls == "MADDPG"]
    assert runners and set(runners) == {cluster["worker"]}, actors
    assert trainables and set(trainables) == {cluster["head"]}, actors


@pytest.mark.parametrize("learners", [
    {"per_agent_learners": True},
    {"data_parallel_learners": 2},
], ids=["per_agent", "data_parallel"])
def test_learner_actors_run_on_the_worker_node(two_nodes, learners):
    """Issue 6: each learner mode trains with its learner actors placed on the second node."""
    cluster = two_nodes
    result = driver(cluster["env"], cluster["address"], f"""\
        import rllib_maddpg
        from ray._private import state
        from rllib_maddpg import MADDPGConfig
        config = (MADDPGConfig().environment("mpe/simple_spread")
                  .training(num_steps_sampled_before_learning_starts=500, train_batch_size=64)
                  .learners(learner_resources={{"CPU": 0.5, "env_runner_node": 0.01}}, **{learners!r})
                  .reporting(min_sample_timesteps_per_iteration=1000).debugging(seed=0))
        algo = config.build_algo()
        results = [algo.train() for _ in range(2)]
        steps = [r["num_env_steps_sampled_lifetime"] for r in results]
        rounds = results[-1]["counters"]["maddpg_num_update_rounds"]
        algo.stop()
        print(json.dumps({{"steps": steps, "rounds": rounds,
                          "actors": [(a["ActorClassName"], a["Address"]["NodeID"])
                                     for a in state.actors().values()]}}))
        """, timeout=TIMEOUT)
    learner_nodes = [node for cls, node in result["actors"] if cls in ("AgentLearner", "GradientReplica")]
    expected = 3 if "per_agent_learners" in learners else 2
    assert len(learner_nodes) == expected and set(learner_nodes) == {cluster["worker"]}, result
    assert result["steps"] == [1000, 2000] and result["rounds"] > 0
