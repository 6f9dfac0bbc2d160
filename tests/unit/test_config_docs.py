"""One truth for every MADDPG config key: its default, its `training()` docstring
entry, its range check in `validate()` and its row in README's table agree."""

import ast
import inspect
import os
import re

import pytest

from rllib_maddpg import MADDPGConfig
from test_config import BAD_VALUES

pytestmark = pytest.mark.unit

README = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")
# RLlib's own keys that MADDPG documents in training() and README with its defaults.
RLLIB_KEYS = ["gamma", "train_batch_size"]
KEYS = [name for name in inspect.signature(MADDPGConfig.training).parameters
        if name not in ("self", "kwargs")]


def readme_table():
    """key -> default text, from README's "Configuration" table."""
    with open(README) as f:
        text = f.read()
    table = text[text.index("| key | paper symbol / meaning | default |"):]
    table = table[: table.index("\n\n")]
    rows = {}
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        for key in re.findall(r"`(\w+)`", cells[0]):
            rows[key] = cells[-1]
    return rows


def parse_default(text):
    text = text.strip().strip("`").split(" (")[0]
    if text in ("relu",):
        return text
    return ast.literal_eval(text)


def docstring_args():
    doc = inspect.getdoc(MADDPGConfig.training)
    args = doc[doc.index("Args:"): doc.index("Returns:")]
    return set(re.findall(r"^    (\w+):", args, re.M))


def test_every_training_key_has_a_docstring_entry():
    assert set(KEYS) - docstring_args() == set()
    assert docstring_args() - set(KEYS) == set()


@pytest.mark.parametrize("key", KEYS + RLLIB_KEYS)
def test_every_key_has_a_readme_row_with_its_default(key):
    rows = readme_table()
    assert key in rows, f"README's configuration table has no row for `{key}`"
    assert parse_default(rows[key]) == getattr(MADDPGConfig(), key), (key, rows[key])


def test_readme_documents_no_key_that_does_not_exist():
    assert set(readme_table()) - set(KEYS) - set(RLLIB_KEYS) == set()


def test_every_key_has_a_range_check():
    """validate() refuses a bad value of each key (test_config runs them)."""
    assert set(KEYS + RLLIB_KEYS) - set(BAD_VALUES) == set()
