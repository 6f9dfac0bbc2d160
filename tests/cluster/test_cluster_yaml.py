"""cluster.yaml passes Ray's own cluster-config validation and sets up what the README relies on.

`ray up` first runs `prepare_config` (fills the local provider's defaults)
and `validate_config` (Ray's JSON schema and its extra checks) before it
contacts any host; these tests run the same two steps offline, then check the
parts this project depends on: the token reaches every node and every
`ray start` uses it, the head and the workers advertise the custom resources
that place learners and env runners, and the plugin is installed on every node.
"""

import copy
import json
import os
import shlex

import pytest
import yaml

pytestmark = [pytest.mark.unit, pytest.mark.cluster]

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLUSTER_YAML = os.path.join(REPO, "cluster.yaml")
TOKEN_FILE = "~/.ray/auth_token"


def load():
    with open(CLUSTER_YAML, encoding="utf-8") as f:
        return yaml.safe_load(f)


def ray_validate(raw):
    """What `ray up` does with the file before it contacts any host."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = prepare_config(copy.deepcopy(raw))
    validate_config(config)
    return config


def ray_start_commands(commands):
    return [c for c in commands if "ray start" in c]


def resources_of(command):
    """The JSON of `--resources=...` in a shell command, as a dict."""
    args = [a for a in shlex.split(command) if a.startswith("--resources=")]
    assert len(args) == 1, command
    return json.loads(args[0][len("--resources="):])


def test_ray_accepts_the_file():
    config = ray_validate(load())
    assert config["provider"]["type"] == "local"
    # The local provider keeps every listed worker: one node type, min = max = len(worker_ips).
    (node_type,) = config["available_node_types"].values()
    assert node_type["min_workers"] == node_type["max_workers"] == len(config["provider"]["worker_ips"]) >= 1


def test_placeholders_are_marked_and_documented():
    raw = load()
    placeholders = [raw["provider"]["head_ip"], *raw["provider"]["worker_ips"], raw["auth"]["ssh_user"]]
    assert all(p.startswith("<") and p.endswith(">") for p in placeholders), placeholders
    text = open(CLUSTER_YAML, encoding="utf-8").read()
    assert "replace every <...>" in text


def test_token_reaches_every_node_and_every_ray_start_uses_it():
    config = ray_validate(load())
    # file_mounts (remote: local) are synced to the head and to every worker.
    assert config["file_mounts"].get(TOKEN_FILE) == TOKEN_FILE
    starts = ray_start_commands(config["head_start_ray_commands"] + config["worker_start_ray_commands"])
    assert len(starts) == 2
    for command in starts:
        assert command.startswith("RAY_AUTH_MODE=token ray start"), command
    assert "RAY_AUTH_MODE=disabled" not in json.dumps(config)


def test_head_and_workers_advertise_the_placement_resources():
    config = ray_validate(load())
    (head,) = ray_start_commands(config["head_start_ray_commands"])
    (worker,) = ray_start_commands(config["worker_start_ray_commands"])
    assert "--head" in shlex.split(head) and "--port=6379" in shlex.split(head)
    assert "--address=$RAY_HEAD_IP:6379" in shlex.split(worker)
    # Labels, not limits: large enough that CPUs decide how many actors fit.
    assert resources_of(head) == {"learner_node": 1000}
    assert resources_of(worker) == {"env_runner_node": 1000}


def test_every_node_installs_the_plugin_from_the_synced_directory():
    config = ray_validate(load())
    commands = config["setup_commands"]  # run on the head and on every worker
    torch = next(k for k, c in enumerate(commands) if "torch==2.13.0" in c)
    plugin = next(k for k, c in enumerate(commands) if "~/rllib_maddpg" in c and "pip install" in c)
    assert torch < plugin  # the CPU torch first, or the plugin's deps pull a CUDA build
    assert config["file_mounts"]["~/rllib_maddpg"] == "."
    # `ray up` is run from the repository root: "." is this project.
    assert os.path.exists(os.path.join(REPO, "pyproject.toml"))
    assert "**/.git" in config["rsync_exclude"]


@pytest.mark.parametrize(
    "mutate, error",
    [
        (lambda c: c.update(max_worker=2), "jsonschema"),  # misspelled key
        (lambda c: c["provider"].pop("worker_ips"), "click"),  # the local provider needs the ips
        # An unquoted --resources JSON in a YAML list parses as a mapping, not a command.
        (lambda c: c["worker_start_ray_commands"].append(
            yaml.safe_load("- ray start --resources={\"x\": 1}")[0]), "jsonschema"),
    ],
    ids=["unknown_key", "no_worker_ips", "resources_as_mapping"],
)
def test_ray_validation_catches_broken_variants(mutate, error):
    """The check above has teeth: Ray's validation fails on these edits of the file."""
    import click
    import jsonschema

    raw = load()
    mutate(raw)
    expected = {"jsonschema": jsonschema.ValidationError, "click": click.ClickException}[error]
    with pytest.raises(expected):
        ray_validate(raw)
