"""Prints a short table of what run.sh wrote into OUT_DIR (the device tool's reply shows
the last 12,000 characters of the output; the files hold everything)."""

import glob
import json
import os
import sys


def lines(path):
    if not os.path.exists(path):
        return []
    out = []
    with open(path) as f:
        for raw in f:
            try:
                out.append(json.loads(raw))
            except json.JSONDecodeError:
                pass
    return out


def main(out_dir):
    env = (lines(os.path.join(out_dir, "environment.json")) or [{}])[0]
    gpu = env.get("gpu", {})
    print(f"== machine: {gpu.get('name', 'no GPU')}, torch {env.get('torch')} (CUDA {env.get('torch_cuda')}), "
          f"{env.get('os_cpus')} CPUs ({env.get('lscpu_model_name')}), python {env.get('python')}, "
          f"ray {env.get('packages', {}).get('ray')}")
    print("== parts (rc 124: stopped at its time limit)")
    for p in lines(os.path.join(out_dir, "parts.jsonl")):
        print(f"  {p['part']:<24} rc {p.get('rc')!s:>4}  {p.get('seconds', 0):>5} s of {p.get('timeout_s')} s"
              + ("  SKIPPED (budget)" if p.get("skipped") else ""))
    for name in ("update_rounds.jsonl", "update_rounds_compile.jsonl"):
        rows = lines(os.path.join(out_dir, name))
        if not rows:
            continue
        print(f"== {name}: update rounds/s (median); paths that failed listed under errors")
        for r in rows:
            if "error" in r:
                print(f"  {r}")
                continue
            rates = {k[:-len('_rounds_per_s')]: v for k, v in r.items() if k.endswith("_rounds_per_s")}
            head = f"  N={r['n_agents']:<3} B={r['batch_size']:<5} {r['device']:<4} t={r['torch_threads']:<3}"
            print(head + "  ".join(f"{k} {v:9.1f}" for k, v in rates.items()))
            extra = {k: v for k, v in r.get("variants", {}).items()}
            if extra:
                print("      variants: " + json.dumps(extra)[:400])
            for k, v in r.get("errors", {}).items():
                print(f"      error {k}: {v[:200]}")
    rows = lines(os.path.join(out_dir, "throughput.jsonl"))
    if rows:
        print("== throughput.jsonl: simple_spread training (RLlib, CPU learner)")
        for r in rows:
            print(f"  runners {r['runners']:>2} x {r['envs_per_runner']} envs: {r['train_env_steps_per_s']:8.0f} env steps/s,"
                  f" learner {r['learner_updates_per_s']:6.1f} rounds/s, raw env {r['raw_env_steps_per_s']:7.0f}/s,"
                  f" shares {r.get('time_shares')}")
    for r in lines(os.path.join(out_dir, "learner_on_device.jsonl")):
        print(f"== learner_on_device.jsonl: training with the learner on {r.get('learner_device')}")
        for c in r["comparison"]:
            print(f"  N = {c['n']:>2}: per-agent {c['off']['env_steps_per_s']:8.1f}, batched "
                  f"{c['on']['env_steps_per_s']:8.1f} env steps/s; learner rounds/s "
                  f"{c['off']['update_rounds_per_s_of_learn_time']:.1f} -> {c['on']['update_rounds_per_s_of_learn_time']:.1f}")
    rows = lines(os.path.join(out_dir, "batched_env.jsonl"))
    if rows:
        print(f"== batched_env.jsonl: three paths, learner on {rows[0].get('learner_device')}, "
              f"batched env {rows[0].get('batched_backend')} x {rows[0].get('batched_envs')}")
        for r in rows:
            p = r["paths"]
            print(f"  N = {r['n']:>2}: per-agent {p['per_agent']['env_steps_per_s']:8.1f}, batched learner "
                  f"{p['batched_learner']['env_steps_per_s']:8.1f}, batched env {p['batched_env']['env_steps_per_s']:8.1f}"
                  f" env steps/s ({r['batched_env_vs_its_learner_ceiling']:.2f} of its learner's ceiling)")
    print("== files: " + " ".join(sorted(os.path.basename(f) for f in glob.glob(os.path.join(out_dir, "*")))))


if __name__ == "__main__":
    main(sys.argv[1])
