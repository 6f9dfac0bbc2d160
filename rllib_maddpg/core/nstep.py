"""n-step returns on joint rows (the `n_step` config key; n = 1 is the paper's one-step target).

With n-step returns the critic of agent i regresses on

    y_i = sum_{j<k} gamma^j r_i(t+j) + gamma^k (1 - d_i) Q'_i(x_{t+k}, a'_1..a'_N)

where k = min(n, the steps left in the episode, the steps left in the sampled
fragment), d_i = 1 if the episode terminated for agent i within those k steps,
and a'_j = mu'_j(o_j(t+k)) from the current target actors at learn time, as in
the one-step target. Every row keeps its own x_t, a_t (what the critic is
evaluated at) and stores gamma^k in the `joint_discount` column; the learner
uses that column in place of gamma (core/update.py). The rows at the end of a
fragment have k < n: they bootstrap earlier, with the matching gamma^k, so no
row needs steps that were not sampled with it (the target stays a correct
k-step return; Hessel et al. 2018 and RLlib's DQN use the same n-step target;
with off-policy replay the sum of rewards follows the behaviour policy, the
usual bias of n-step DQN/DDPG, which n = 1 does not have).

Plain numpy on the joint columns (core/joint.py): no RLlib.
"""

from typing import Dict

import numpy as np

from rllib_maddpg.core.joint import (
    DISCOUNT_COL, new_obs_col, next_alive_col, rewards_col, terminateds_col,
)


def n_step_rows(rows: Dict[str, np.ndarray], episode_ids: np.ndarray, num_agents: int,
                gamma: float, n: int) -> Dict[str, np.ndarray]:
    """The joint rows with n-step rewards, terminations and next states, and `joint_discount`.

    rows: joint columns of consecutive env steps; rows of one episode are
        contiguous and in time order (as the samplers produce them), so two
        neighbouring rows with the same episode id are consecutive steps.
    episode_ids: [rows] the episode of each row.
    Returns new arrays; `rows` is not changed.
    """
    count = len(episode_ids)
    out = dict(rows)
    # k(t): how many of rows t, t+1, ..., t+n-1 belong to row t's episode (and fragment).
    steps = np.ones(count, np.int64)
    for j in range(1, n):
        same = np.zeros(count, bool)
        same[:count - j] = episode_ids[j:] == episode_ids[:count - j]
        steps += same & (steps == j)  # still contiguous up to j
    rows_t = np.arange(count)
    last = rows_t + steps - 1  # the row whose next state row t bootstraps from
    # Per j < n: row t + j (clipped at the end; used only where j < k(t)).
    ahead = [(np.minimum(rows_t + j, count - 1), j < steps) for j in range(n)]
    for i in range(num_agents):
        r, d = rows[rewards_col(i)], rows[terminateds_col(i)]
        total, done = np.zeros(count, np.float32), np.zeros(count, np.float32)
        for j, (idx, inside) in enumerate(ahead):
            # Once the episode terminated for agent i, its later rewards are padding (0).
            total += np.where(inside & (done == 0), (gamma ** j) * r[idx], 0.0).astype(np.float32)
            done = np.maximum(done, np.where(inside, d[idx], 0.0)).astype(np.float32)
        out[rewards_col(i)] = total
        out[terminateds_col(i)] = done
        out[new_obs_col(i)] = rows[new_obs_col(i)][last]
        out[next_alive_col(i)] = rows[next_alive_col(i)][last]
    out[DISCOUNT_COL] = (gamma ** steps).astype(np.float32)
    return out
