"""MADDPG's two rules for env data, and the errors that name a broken one.

1. Lockstep, when asked for (`strict_lockstep`): every agent acts (and
   observes, and is rewarded) at every step until the episode ends. Each
   row of the replay buffer holds one env step of all agents (the
   centralized critic's x and a_1..a_N); without the rule, absent agents'
   slots are padding with alive flags (sampler.py, joint_batch.py).
2. Finite: no NaN or inf in observations or rewards; one reaches every
   critic through the joint rows and poisons them all.

The data arrives by three routes, each checked where it enters: the
PettingZoo wrapper (envs/pettingzoo_env.py) checks each env step for
finite values, the lockstep sampler (sampler.py) who is present, and
postprocessing (joint_batch.py) the per-agent batches of RLlib's own sampler.
All of them raise the errors built here.
"""

from typing import Any

import numpy as np

LOCKSTEP_FIX = (
    "With strict_lockstep=True MADDPG needs every agent to act every step until "
    "the episode ends; set strict_lockstep=False to let agents finish early, die, "
    "leave or arrive late (their slots in the critic's input are then masked), "
    "with MADDPG's lockstep sampler (use_lockstep_sampler=True, the default: "
    "RLlib's generic sampler needs every agent every step)."
)

_NOT_FINITE_FIX = {
    "observation": "Check the env's dynamics/observation code for this agent, or "
    "clip the observations (values beyond float32 range also become inf here).",
    "reward": "Check the env's reward code for this agent, or clip the rewards.",
}


def not_lockstep(what: str) -> RuntimeError:
    """The error for data in which an agent is missing from a step: `what` went wrong, and the fix."""
    return RuntimeError(f"{what}. {LOCKSTEP_FIX}")


def not_finite(agent_id: Any, kind: str, step: int, value: Any = None) -> ValueError:
    """The error for a NaN or inf `kind` ("observation" or "reward") of an agent at a step."""
    shown = "" if value is None else f": {value!r}"
    return ValueError(
        f"Non-finite {kind} (NaN or inf) for agent {agent_id!r} at step {step} of the "
        f"episode{shown}. {_NOT_FINITE_FIX[kind]}"
    )


def check_finite(agent_id: Any, kind: str, values: Any, steps: Any) -> None:
    """Raises `not_finite` for the first row of `values` holding NaN or inf.

    `values`: one agent's observations or rewards, one row per step;
    `steps`: the episode step t of each row.
    """
    values = np.asarray(values, dtype=np.float64)
    if np.isfinite(values).all():
        return
    bad_row = int(np.argwhere(~np.isfinite(values.reshape(len(values), -1)))[0, 0])
    raise not_finite(agent_id, kind, int(np.asarray(steps)[bad_row]))
