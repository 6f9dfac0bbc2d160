"""`rllib evaluate`: a checkpoint's policies in their env, each agent on its own observation, without Ray."""

from __future__ import annotations

import glob
import importlib.util
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from ray.rllib.env.env_context import EnvContext
from ray.rllib.policy.policy import Policy
from ray.rllib.utils.serialization import deserialize_type

from rllib_maddpg.cli.errors import EXIT_OK, UsageError
from rllib_maddpg.envs import env_agent_ids, make_mpe_env
from rllib_maddpg.evaluation import run_episodes


def cmd_evaluate(args) -> int:
    if args.render:  # fail before the episodes, not after
        out_dir = os.path.dirname(os.path.abspath(args.render))
        if not os.path.isdir(out_dir):
            raise UsageError(f"--render: directory {out_dir} does not exist")
        if os.path.exists(args.render):
            raise UsageError(f"--render: {args.render} exists; give a new file name (nothing is overwritten)")
        if importlib.util.find_spec("PIL") is None:
            raise UsageError("--render writes GIFs with Pillow, which is not installed: "
                             "pip install 'rllib-maddpg[render]' (or pip install pillow)")
    checkpoint = find_checkpoint(args.checkpoint)
    policies = load_policies(checkpoint)
    config = next(iter(policies.values())).config
    ensembles = {pid: p.num_subpolicies for pid, p in policies.items() if getattr(p, "num_subpolicies", 1) > 1}
    if args.subpolicy is not None and any(args.subpolicy >= k for k in ensembles.values()):
        raise UsageError(f"--subpolicy {args.subpolicy}: the ensembles have {ensembles} sub-policies")
    if args.seed is not None:
        torch.manual_seed(args.seed)
        np.random.seed(args.seed)
    env = make_env(config, render=bool(args.render))
    agent_ids = env_agent_ids(env)
    mapping = _agent_to_policy(config, agent_ids, policies)
    print(f"evaluating {checkpoint}\n  env {config.get('env')!r}, {len(agent_ids)} agents, "
          f"{args.episodes} episodes, explore={args.explore}, seed={args.seed}", flush=True)
    try:
        result = run_episodes(policies, mapping, env, args.episodes, explore=args.explore, seed=args.seed,
                              subpolicy=args.subpolicy, record_first=bool(args.render))
    finally:
        env.close()

    rows = [(str(a), str(mapping[a]), result.returns[:, k]) for k, a in enumerate(agent_ids)]
    rows.append(("team (sum)", "", result.returns.sum(axis=1)))
    width, pwidth = max(len(row[0]) for row in rows), max(len("policy"), *(len(row[1]) for row in rows))
    print(f"  mean episode length {np.mean(result.lengths):.1f}")
    print(f"  {'agent':<{width}}  {'policy':<{pwidth}}  {'mean':>9}  {'std':>8}  {'min':>9}  {'max':>9}")
    for agent, policy_id, values in rows:
        print(f"  {agent:<{width}}  {policy_id:<{pwidth}}  {values.mean():9.3f}  "
              f"{values.std():8.3f}  {values.min():9.3f}  {values.max():9.3f}")
    if args.metrics and not result.task_metrics:
        print(f"  no task metrics for env {config.get('env')!r} (the paper's metrics cover six MPE scenarios)")
    elif args.metrics:
        print("  task metrics (mean over episodes; see rllib_maddpg/envs/mpe_metrics.py):")
        for name, mean in result.mean_task_metrics().items():
            shown = f"{100 * mean:.1f}%" if name.endswith(("_success", "_reached")) else f"{mean:.3f}"
            print(f"    {name:<26} {shown}")
    if args.render:
        frames = [f for f in result.frames if f is not None]
        if not frames:
            raise UsageError("--render: the env's render() returned no frames")
        size = write_gif(args.render, frames, fps=args.fps)
        print(f"  wrote {args.render}: {len(frames)} frames, {size / 1e3:.0f} kB (first episode)")
    return EXIT_OK


def find_checkpoint(path: str) -> str:
    """A checkpoint directory, from a checkpoint or trial (or one-trial experiment) directory."""
    path = os.path.abspath(os.path.expanduser(path))
    if not os.path.isdir(path):
        raise UsageError(f"checkpoint not found: {path}" if not os.path.exists(path)
                         else f"{path} is not a checkpoint directory (checkpoint_NNNNNN/)")
    if os.path.exists(os.path.join(path, "rllib_checkpoint.json")):
        return path
    for pattern in ("checkpoint_*", "*/checkpoint_*", "*/*/checkpoint_*"):
        latest = {}  # trial directory -> its latest checkpoint
        for found in sorted(glob.glob(os.path.join(glob.escape(path), pattern, "rllib_checkpoint.json"))):
            checkpoint = os.path.dirname(found)
            latest[os.path.dirname(checkpoint)] = checkpoint
        if len(latest) == 1:
            (chosen,) = latest.values()
            print(f"using the latest checkpoint below {path}: {chosen}")
            return chosen
        if latest:
            shown = sorted(latest.values())
            raise UsageError(f"{path} holds {len(shown)} trials; pick a checkpoint of one: "
                             f"{', '.join(shown[:5])}{' ...' if len(shown) > 5 else ''}")
    raise UsageError(f"{path} is not an RLlib checkpoint (no rllib_checkpoint.json) nor a trial "
                     "directory with checkpoint_* sub-directories")


def load_policies(checkpoint: str) -> dict[str, Any]:
    """The policies of an Algorithm checkpoint (from its policies/<id>/), without Ray."""
    try:
        policies = Policy.from_checkpoint(checkpoint)
    except Exception as e:  # not a checkpoint, or one of code that is gone
        raise UsageError(f"cannot restore the policies of {checkpoint}: {e}") from e
    if not isinstance(policies, dict) or not policies:
        raise UsageError(f"{checkpoint} holds no policies; give an Algorithm checkpoint "
                         "(a checkpoint_NNNNNN directory written by `rllib train`)")
    return policies


def _agent_to_policy(config: dict[str, Any], agent_ids: Sequence, policies: dict[str, Any]) -> dict:
    """agent -> policy id, by the saved policy_mapping_fn (MADDPG's is its agent -> policy table)."""
    fn = config.get("policy_mapping_fn")
    mapping = {}
    for agent_id in agent_ids:
        try:
            mapping[agent_id] = fn(agent_id, None, worker=None) if fn else str(agent_id)
        except Exception:  # a mapping fn that needs the episode: the agent's own policy
            mapping[agent_id] = str(agent_id)
    missing = {a: p for a, p in mapping.items() if p not in policies}
    if missing:
        raise UsageError(f"the checkpoint has no policy for agent(s) {missing}; it has {sorted(policies)}")
    return mapping


def make_env(config: dict[str, Any], render: bool):
    """The checkpoint's env: `mpe/<scenario>` from rllib_maddpg's factory, or an env
    class (or its `module.Class` / `module:Class` path) built as Cls(env_config), as RLlib does."""
    spec = config.get("env")
    env_config = {**(config.get("env_config") or {}), **({"render_mode": "rgb_array"} if render else {})}
    context = EnvContext(env_config, worker_index=0, num_workers=0)
    try:
        if isinstance(spec, str) and spec.startswith("mpe/"):
            return make_mpe_env(spec[len("mpe/"):], context)
        if isinstance(spec, str):
            if not {".", ":"} & set(spec):
                raise ValueError("`rllib evaluate` builds mpe/<scenario> envs and env classes "
                                 "(module.Class); build other envs in Python")
            spec = deserialize_type(spec.replace(":", "."), error=True)
        return spec(context)
    except Exception as e:  # any failure to build it
        extra = " with render_mode='rgb_array' (does its env_config accept it?)" if render else ""
        raise UsageError(f"cannot build the checkpoint's env {config.get('env')!r}{extra}: {e}") from e


def write_gif(path: str, frames, fps: float) -> int:
    """An animated GIF of RGB(A) frames at full resolution, each with its own
    adaptive palette, LZW-compressed by Pillow; returns the file's size."""
    from PIL import Image

    images = [Image.fromarray(frame[..., :3]).quantize(colors=256) for frame in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(round(1000 / fps)),
                   loop=0, optimize=True)
    return os.path.getsize(path)
