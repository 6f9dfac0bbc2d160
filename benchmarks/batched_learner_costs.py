"""What the batched learner (config key `batched_update`) costs and gains per update round, on
RLlib's own policies (issue 23, item 1).

    PYTHONPATH=. python benchmarks/batched_learner_costs.py --agents 3 6 12 --reps 5

No Ray: MADDPG's policies for mpe/simple_spread with N agents, built as the
algorithm builds them (tests/support.py's build_policies), one torch thread,
one random joint minibatch of 1024 rows. Timed interleaved, `--reps` times,
medians in ms:
  loop       one round as MADDPG.update runs it with batched_update="off":
             the target actions of every agent, then each policy's learn_on_batch;
  batched    BatchedLearner.update on the same minibatch (the target actions inside);
  check      BatchedLearner.acts_for, which MADDPG.update runs before every
             batched round (are the policies' tensors still views of the stacks?);
  adam_out   BatchedLearner.save_optimizer_states: each agent's slice of Adam's
             state into its policy's optimizers, run before every checkpoint.
The weights themselves cost nothing per round: the stacks are the policies'
storage. Prints one JSON line per N.
"""

import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from support import build_policies, random_joint_batch  # noqa: E402

from rllib_maddpg.batched_learner import BatchedLearner  # noqa: E402
from rllib_maddpg.core import joint as jb  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, nargs="+", default=[3, 6, 12])
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for n in args.agents:
        _, loop = build_policies(env="mpe/simple_spread", env_config={"N": n})
        _, alike = build_policies(env="mpe/simple_spread", env_config={"N": n})
        learner = BatchedLearner(alike)
        batch = random_joint_batch([p.agents[p.agent_index] for p in loop], batch_size=1024)

        def run_loop():
            b = dict(batch)
            jb.attach_target_actions(b, loop)
            for policy in loop:
                policy.learn_on_batch(b)

        paths = {"loop": (run_loop, 3), "batched": (lambda: learner.update(batch), 3),
                 "check": (lambda: learner.acts_for(alike), 20), "adam_out": (learner.save_optimizer_states, 3)}
        times = {name: [] for name in paths}
        for _ in range(args.reps):
            for name, (fn, calls) in paths.items():
                start = time.perf_counter()
                for _ in range(calls):
                    fn()
                times[name].append((time.perf_counter() - start) / calls * 1000)
        ms = {name: round(statistics.median(v), 3) for name, v in times.items()}
        print(json.dumps({"n": n, "ms": ms, "loop_over_batched": round(ms["loop"] / ms["batched"], 3),
                          "check_share_of_batched_round": round(ms["check"] / ms["batched"], 4),
                          "torch_num_threads": 1, "loadavg1": round(os.getloadavg()[0], 2)}), flush=True)


if __name__ == "__main__":
    main()
