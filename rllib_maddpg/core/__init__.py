"""MADDPG itself, in plain torch and numpy: no Ray, no RLlib.

    losses.py    the paper's equations, one pure tensor function each
    update.py    one update of an agent (or a shared group), top to bottom
    networks.py  actor, critic, targets, policy approximators
    actions.py   action heads, Gumbel-Softmax, exploration noise
    joint.py     the joint row schema (every agent's o, a, r, o', d, alive flags)
    replay.py    the joint replay buffer D

The RLlib adapter (policy.py, maddpg.py, sampler.py, joint_batch.py) wires
these into RLlib's old API stack; a port to the new stack reuses them as
they are. tests/unit/test_layout.py checks that nothing here imports Ray or
the adapter.
"""
