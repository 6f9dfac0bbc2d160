"""What the speaker of cooperative communication says, from the checkpoints of reproduce_paper.py.

    python benchmarks/speaker_messages.py --out docs/repro

For every saved simple_speaker_listener run (`--out/checkpoints/<setting>_<seed>/`)
it feeds the speaker's actor the three goal colours it can observe and prints:
  - its noise-free message per goal (softmax of the logits);
  - how many distinct messages it sends (argmax per goal; 3 = one per landmark);
  - how many of its first-layer ReLUs are active for at least one goal (a dead
    unit is zero for every goal, so no gradient reaches it again).
The figures go to `--out/speaker_messages.json` (one entry per run), beside the
runs they describe.
"""

import argparse
import glob
import json
import os

import numpy as np

# The speaker observes its goal landmark's colour plus 0.45 (mpe2 and the original).
GOAL_COLOURS = np.array([[0.65, 0.15, 0.15], [0.15, 0.65, 0.15], [0.15, 0.15, 0.65]]) + 0.45


def speaker_report(policy_dir: str) -> dict:
    import torch
    from ray.rllib.policy.policy import Policy

    policy = Policy.from_checkpoint(policy_dir)
    actor = policy.model.actor
    x = torch.tensor(GOAL_COLOURS, dtype=torch.float32)
    with torch.no_grad():
        messages = torch.softmax(actor(x), -1).numpy()
        first = actor[0](x)
    active = int((first > 0).any(0).sum())
    return {
        "messages": np.round(messages, 3).tolist(),
        "distinct_messages": len(set(messages.argmax(-1).tolist())),
        "active_first_layer_units": active,
        "first_layer_units": int(first.shape[1]),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="docs/repro")
    args = parser.parse_args()
    out = os.path.abspath(args.out)

    import rllib_maddpg  # noqa: F401  (policy classes unpickle from it)

    path = os.path.join(out, "speaker_messages.json")
    reports = {}
    if os.path.exists(path):
        with open(path) as f:
            reports = json.load(f)
    for ckpt in sorted(glob.glob(os.path.join(out, "checkpoints", "*", "policies", "speaker_0"))):
        run = os.path.basename(os.path.dirname(os.path.dirname(ckpt)))
        if not os.path.exists(os.path.join(out, "runs", f"{run}.json")):
            continue  # still training
        reports[run] = speaker_report(ckpt)
    with open(path, "w") as f:
        json.dump(reports, f, indent=1, sort_keys=True)
    for run, r in sorted(reports.items()):
        shown = " ".join("[" + ",".join(f"{p:.2f}" for p in m) + "]" for m in r["messages"])
        print(f"{run:24s} distinct {r['distinct_messages']}  active units "
              f"{r['active_first_layer_units']:2d}/{r['first_layer_units']}  {shown}")


if __name__ == "__main__":
    main()
