"""The package's module-level imports form no circle, config.py imports
neither the policy nor the algorithm anywhere (not even inside a function), and
`import rllib_maddpg` leaves the genetic subpackage out until it is used."""

import ast
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

PACKAGE = os.path.join(os.path.dirname(__file__), "..", "..", "rllib_maddpg")


def module_imports():
    """module name -> the rllib_maddpg modules it imports at module level."""
    graph = {}
    for root, _, files in os.walk(PACKAGE):
        for file in files:
            if not file.endswith(".py"):
                continue
            path = os.path.join(root, file)
            rel = os.path.relpath(path, os.path.dirname(PACKAGE))[:-3].replace(os.sep, ".")
            name = rel[: -len(".__init__")] if rel.endswith(".__init__") else rel
            with open(path) as f:
                tree = ast.parse(f.read())
            deps = set()
            for node in tree.body:  # module level only: imports inside functions run later
                if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rllib_maddpg"):
                    deps.add(node.module)
                    deps.update(f"{node.module}.{a.name}" for a in node.names)
                elif isinstance(node, ast.Import):
                    deps.update(a.name for a in node.names if a.name.startswith("rllib_maddpg"))
            graph[name] = deps
    return {m: {d for d in deps if d in graph and d != m} for m, deps in graph.items()}


def test_no_import_circles_between_modules():
    graph = module_imports()
    # The package __init__ re-exports everything; a submodule importing a sibling
    # runs __init__ first but does not need it, so leave __init__ files out.
    inits = {m for m in graph if any(m == f"rllib_maddpg{s}" for s in ("", ".envs", ".genetic"))}
    graph = {m: deps - inits for m, deps in graph.items() if m not in inits}
    state = {}

    def visit(m, path):
        state[m] = "open"
        for d in graph[m]:
            assert state.get(d) != "open", f"import circle: {' -> '.join(path + [d])}"
            if d not in state:
                visit(d, path + [d])
        state[m] = "done"

    for m in graph:
        if m not in state:
            visit(m, [m])


def test_config_imports_neither_policy_nor_algorithm():
    # Every import in config.py, inside functions and classes too (ast.walk), in
    # any spelling: `import rllib_maddpg.maddpg`, `from rllib_maddpg.policy import ...`,
    # `from rllib_maddpg import MADDPG`, or a module name handed to importlib.
    forbidden_modules = ("rllib_maddpg.policy", "rllib_maddpg.maddpg")
    forbidden_names = {"MADDPG", "MADDPGTorchPolicy", "policy", "maddpg"}
    with open(os.path.join(PACKAGE, "config.py")) as f:
        tree = ast.parse(f.read())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith(forbidden_modules)]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith(forbidden_modules):
                found.append(node.module)
            elif node.module == "rllib_maddpg":
                found += [f"rllib_maddpg.{a.name}" for a in node.names if a.name in forbidden_names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and node.value.startswith(forbidden_modules):
            found.append(f"the string {node.value!r}")
    assert not found, f"config.py imports {found}: it holds configuration only"


def test_import_rllib_maddpg_does_not_import_genetic():
    # A fresh process: this one may have imported it already.
    code = ("import sys, rllib_maddpg\n"
            "loaded = sorted(m for m in sys.modules if m.startswith('rllib_maddpg.genetic'))\n"
            "assert not loaded, loaded\n")
    subprocess.run([sys.executable, "-c", code], check=True)
