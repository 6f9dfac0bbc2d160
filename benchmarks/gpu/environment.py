"""One JSON object describing the machine run.sh measures on: Python, torch, CUDA, the GPU
(torch's view and nvidia-smi's), the CPUs, and the versions of the carried packages."""

import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys


def run(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
        return (out.stdout or out.stderr).strip()
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"


info = {"python": sys.version.split()[0], "executable": sys.executable, "platform": platform.platform(),
        "os_cpus": os.cpu_count(), "loadavg": os.getloadavg(),
        "pythonpath": os.environ.get("PYTHONPATH", "")}
try:
    info["affinity_cpus"] = len(os.sched_getaffinity(0))
except AttributeError:
    pass
for line in run(["lscpu"]).splitlines():
    if line.startswith(("Model name", "Socket(s)", "Thread(s) per core", "Core(s) per socket")):
        key, _, value = line.partition(":")
        info["lscpu_" + key.strip().lower().replace(" ", "_").replace("(s)", "s")] = value.strip()
try:
    import torch

    info["torch"] = torch.__version__
    info["torch_cuda"] = torch.version.cuda
    info["cudnn"] = torch.backends.cudnn.version()
    info["torch_threads_default"] = torch.get_num_threads()
    info["cuda_available"] = torch.cuda.is_available()
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        info["gpu"] = {"name": p.name, "capability": f"{p.major}.{p.minor}",
                       "multiprocessors": p.multi_processor_count,
                       "memory_gib": round(p.total_memory / 2**30, 1), "count": torch.cuda.device_count()}
except Exception as exc:  # noqa: BLE001
    info["torch_error"] = f"{type(exc).__name__}: {exc}"
if shutil.which("nvidia-smi"):
    query = ("name,driver_version,memory.total,memory.used,clocks.sm,clocks.max.sm,power.draw,power.limit,"
             "temperature.gpu,utilization.gpu")
    info["nvidia_smi"] = run(["nvidia-smi", f"--query-gpu={query}", "--format=csv"])
    info["nvidia_smi_header"] = run(["nvidia-smi"]).splitlines()[:4]
else:
    info["nvidia_smi"] = "not found"
versions = {}
for name in ("ray", "gymnasium", "pettingzoo", "mpe2", "pygame-ce", "dm-tree", "lz4", "pydantic", "jsonschema",
             "numpy", "scipy", "pandas", "pyarrow", "typing-extensions", "triton", "msgpack", "protobuf"):
    try:
        versions[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        versions[name] = None
info["packages"] = versions
try:
    st = os.statvfs("/dev/shm")
    info["dev_shm_gib"] = round(st.f_blocks * st.f_frsize / 2**30, 1)
except OSError:
    info["dev_shm_gib"] = None
if len(sys.argv) > 1:
    info["extra"] = json.loads(sys.argv[1])
print(json.dumps(info))
