"""Bytes a remote env runner ships per sample, at N = 3 and N = 12 (simple_spread).

    python benchmarks/sample_bytes.py

Builds MADDPG on `mpe/simple_spread` with N agents (one policy per agent,
8 sub-envs x 25 steps per fragment: 200 env steps), samples one fragment
with the driver's env runner, and prints one JSON line per N: the pickled
size of the MultiAgentBatch (what Ray serialises when a remote runner
returns it), the bytes per env step, and the bytes of the joint columns
alone. No training; one process.
"""

import json
import pickle

import numpy as np


def measure(n_agents):
    from rllib_maddpg import MADDPGConfig

    config = (
        MADDPGConfig()
        .environment("mpe/simple_spread", env_config={"N": n_agents})
        .env_runners(num_env_runners=0, num_envs_per_env_runner=8, rollout_fragment_length=25)
        .debugging(seed=0)
    )
    algo = config.build_algo()
    try:
        batch = algo.env_runner_group.local_env_runner.sample().as_multi_agent()
        joint = sum(v.nbytes for b in batch.policy_batches.values()
                    for k, v in b.items() if k.startswith("joint_") and isinstance(v, np.ndarray))
        size = len(pickle.dumps(batch, protocol=5))
        return {"N": n_agents, "env_steps": batch.env_steps(), "pickled_bytes": size,
                "bytes_per_env_step": round(size / batch.env_steps(), 1), "joint_column_bytes": joint,
                "policy_batches": sorted(batch.policy_batches)}
    finally:
        algo.stop()


def main():
    import ray
    import torch

    torch.set_num_threads(1)
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    for n in (3, 12):
        print(json.dumps(measure(n)), flush=True)
    ray.shutdown()


if __name__ == "__main__":
    main()
