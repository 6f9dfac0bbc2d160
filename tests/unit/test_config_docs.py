"""One truth for every MADDPG config key: its default, its docstring entry in
the builder method that sets it (`training()` for the algorithm's keys,
`env_runners()` / `learners()` / `fault_tolerance()` / `framework()` for the
infrastructure keys), its range check in `validate()` and its row in README's
table agree."""

import ast
import inspect
import os
import re

import pytest

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig

from rllib_maddpg import MADDPGConfig
from test_config import BAD_VALUES

pytestmark = pytest.mark.unit

README = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")
# RLlib's own keys that MADDPG documents in training() and README with its defaults.
RLLIB_KEYS = ["gamma", "train_batch_size"]
# The builders that take MADDPG's keys; each also passes RLlib's own on.
BUILDERS = ["training", "env_runners", "learners", "fault_tolerance", "framework"]
_RLLIB_ATTRS = set(vars(AlgorithmConfig()))
_MADDPG_ATTRS = set(vars(MADDPGConfig())) - _RLLIB_ATTRS


def maddpg_keys(builder):
    """MADDPG's own keyword arguments of a builder: its parameters that are
    attributes MADDPGConfig adds to AlgorithmConfig's (not RLlib's own)."""
    params = inspect.signature(getattr(MADDPGConfig, builder)).parameters
    return [name for name in params if name in _MADDPG_ATTRS]


OWNER = {key: builder for builder in BUILDERS for key in maddpg_keys(builder)}
KEYS = list(OWNER)


def readme_table(column=-1):
    """key -> default text (or another column's), from README's "Configuration" table."""
    with open(README) as f:
        text = f.read()
    table = text[text.index("| key | paper symbol / meaning | default |"):]
    table = table[: table.index("\n\n")]
    rows = {}
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        for key in re.findall(r"`(\w+)`", cells[0]):
            rows[key] = cells[column]
    return rows


def parse_default(text):
    text = text.strip().strip("`").split(" (")[0]
    if text in ("relu",):
        return text
    return ast.literal_eval(text)


def docstring_args(builder):
    doc = inspect.getdoc(getattr(MADDPGConfig, builder))
    args = doc[doc.index("Args:"): doc.index("Returns:")]
    return set(re.findall(r"^    (\w+):", args, re.M))


def test_every_maddpg_key_is_set_by_exactly_one_builder():
    seen = [key for builder in BUILDERS for key in maddpg_keys(builder)]
    assert len(seen) == len(set(seen)), seen
    # Every attribute MADDPGConfig adds (but the ones validate() derives) has a builder.
    assert {a for a in _MADDPG_ATTRS if not a.startswith("_")} - set(KEYS) == set()


@pytest.mark.parametrize("builder", BUILDERS)
def test_every_key_has_a_docstring_entry_in_its_builder(builder):
    """Each builder documents exactly MADDPG's keys it owns (RLlib's own go
    through **kwargs and are documented by RLlib)."""
    assert docstring_args(builder) == set(maddpg_keys(builder))


def test_every_key_is_set_by_its_builder():
    for key, builder in OWNER.items():
        value = object()
        config = getattr(MADDPGConfig(), builder)(**{key: value})
        assert getattr(config, key) is value, (builder, key)


@pytest.mark.parametrize("key", KEYS + RLLIB_KEYS)
def test_every_key_has_a_readme_row_with_its_default(key):
    rows = readme_table()
    assert key in rows, f"README's configuration table has no row for `{key}`"
    assert parse_default(rows[key]) == getattr(MADDPGConfig(), key), (key, rows[key])


@pytest.mark.parametrize("key", [k for k in KEYS if OWNER[k] != "training"])
def test_readme_row_of_an_infrastructure_key_names_its_builder(key):
    assert f"`{OWNER[key]}()`" in readme_table(column=1)[key], key


def test_readme_documents_no_key_that_does_not_exist():
    assert set(readme_table()) - set(KEYS) - set(RLLIB_KEYS) == set()


def test_every_key_has_a_range_check():
    """validate() refuses a bad value of each key (test_config runs them)."""
    assert set(KEYS + RLLIB_KEYS) - set(BAD_VALUES) == set()
