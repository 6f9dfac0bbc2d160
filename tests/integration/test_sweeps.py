"""Tune sweeps: examples/tune_asha.py (Python API + ASHA) and tuned_examples/sweep_simple_spread.yaml."""

import argparse
import importlib.util
import io
import itertools
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_example(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, "examples", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.integration
def test_asha_sweep_reports_the_best_trial_and_its_checkpoint(ray_local, tmp_path):
    """2 trials of one 200-step iteration each: no stop criterion, ASHA's max_t ends them."""
    tune_asha = load_example("tune_asha")
    results = tune_asha.run(
        num_samples=2, max_env_steps=200, grace_env_steps=200, steps_per_iteration=200,
        storage_path=str(tmp_path), name="asha",
        overrides={"num_steps_sampled_before_learning_starts": 100, "train_batch_size": 32},
    )
    assert len(results) == 2 and not results.errors
    for result in results:
        assert result.metrics["training_iteration"] == 1
        assert result.metrics[tune_asha.TIME_ATTR] == 200
    assert len({r.config["actor_lr"] for r in results}) == 2  # sampled, not fixed

    out = io.StringIO()
    best = tune_asha.report(results, out=out)
    assert best["trials"] == 2 and best["errors"] == 0
    assert best["return"] == max(tune_asha.metric(r) for r in results)
    assert 1e-3 <= best["config"]["actor_lr"] <= 3e-2
    assert best["config"]["tau"] in (0.005, 0.01, 0.02, 0.05)
    assert best["checkpoint"].startswith(best["path"])
    assert os.path.exists(os.path.join(best["checkpoint"], "rllib_checkpoint.json"))
    assert f"best checkpoint: {best['checkpoint']}" in out.getvalue()


@pytest.mark.unit
def test_sweep_yaml_is_a_4_trial_grid_over_actor_lr_and_tau(tmp_path):
    from rllib_maddpg.cli import experiments as cli

    path = os.path.join(REPO, "tuned_examples", "sweep_simple_spread.yaml")
    (name, raw), = cli.load_experiment_file(path).items()
    args = argparse.Namespace(storage_path=str(tmp_path), checkpoint_freq=None, checkpoint_at_end=None)
    spec = cli.prepare_experiment(name, raw, {}, {}, args)  # validates every grid value
    assert spec.num_trials == 4
    grids = {key: spec.config[key] for key in ("actor_lr", "tau")}
    assert grids == {"actor_lr": {"grid_search": [0.01, 0.001]}, "tau": {"grid_search": [0.01, 0.05]}}
    assert sorted((v["actor_lr"], v["tau"]) for v in spec.variants) == sorted(
        itertools.product([0.01, 0.001], [0.01, 0.05]))
    # The rest is the tuned example's setup.
    (tuned,) = cli.load_experiment_file(os.path.join(REPO, "tuned_examples", "simple_spread.yaml")).values()
    assert spec.stop == cli.flatten_stop(tuned["stop"], "")
    for key, value in tuned["config"].items():
        if key not in ("actor_lr", "tau"):
            assert spec.config[key] == value, key
