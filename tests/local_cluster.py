"""A real two-node Ray cluster on one machine, for the cluster tests and benchmarks.

Test support, not part of the installed package: tests import it as
`local_cluster` (pytest puts tests/ on sys.path), benchmarks after adding the
repository's tests/ directory to sys.path.

Two `ray start --block` processes, as cluster.yaml starts them on two
machines: a head and a worker, each with its own logical CPUs and custom
resources, sharing a fresh temp dir and free ports. Token authentication is
on with a fresh random token passed in the environment (RAY_AUTH_MODE=token,
RAY_AUTH_TOKEN), so the user's ~/.ray/auth_token is neither read nor changed
and the GCS port, which listens on all interfaces, is never open without
authentication. A driver joins with `env` (a subprocess's environment, or
`os.environ.update(cluster.env)` before `import ray`, which reads the auth
mode once). At exit all nodes are stopped by PID, then any process still
running from the temp dir is killed, and the temp dir is removed.
"""

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Dict, Iterator, List, Optional


@dataclasses.dataclass
class LocalCluster:
    address: str  # the head's GCS address, for `ray.init(address=...)` / `--ray-address`
    env: Dict[str, str]  # this process's environment plus the token settings
    log_path: str  # all nodes' output
    num_cpus: int = 1
    nodes: List[subprocess.Popen] = dataclasses.field(default_factory=list)  # nodes[0]: the head

    def log_tail(self, chars: int = 3000) -> str:
        with open(self.log_path) as f:
            return f.read()[-chars:]

    def add_node(self, resources: Dict[str, float]) -> subprocess.Popen:
        """Starts one more worker node (`ray start --block`) with `num_cpus` CPUs and `resources`."""
        with open(self.log_path, "a") as log:
            node = subprocess.Popen(
                _ray_start(self.num_cpus, self.env["RAY_TMPDIR"])
                + [f"--address={self.address}", f"--dashboard-agent-listen-port={free_port()}",
                   "--resources=" + json.dumps(resources)],
                env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.nodes.append(node)
        return node

    def kill_node(self, node: subprocess.Popen, timeout: float = 30) -> None:
        """Loses a worker node as a preempted machine or an OOM-killed raylet does:
        SIGKILLs its raylet (by PID; its worker processes then exit on their
        own), and waits for its `ray start --block` to notice and exit."""
        raylets = [pid for pid in _children(node.pid) if b"raylet" in _cmdline(pid).split(b"\0")[0]]
        if not raylets:
            raise RuntimeError(f"no raylet under node process {node.pid}:\n{self.log_tail()}")
        for pid in raylets:
            os.kill(pid, signal.SIGKILL)
        try:
            node.wait(timeout)
        except subprocess.TimeoutExpired:
            _stop(node)


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def _children(pid: int) -> List[int]:
    found = []
    for child in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{child}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            found.append(int(child))
    return found


def _ray_start(num_cpus: int, temp_dir: str) -> List[str]:
    return [sys.executable, "-m", "ray.scripts.scripts", "start", "--block", f"--num-cpus={num_cpus}",
            f"--temp-dir={temp_dir}", "--disable-usage-stats"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kill_processes_under(path: str, wait_s: float = 20) -> None:
    """Waits up to `wait_s` for the processes whose command line names `path`
    (a Ray temp dir: only ours) to exit, then SIGKILLs those left, by PID."""
    def pids():
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if path.encode() in f.read():
                        found.append(int(pid))
            except OSError:
                pass
        return found

    deadline = time.time() + wait_s
    while pids() and time.time() < deadline:
        time.sleep(0.5)
    for pid in pids():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _stop(proc: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM a `ray start --block` process (it takes its node down), then SIGKILL."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def two_node_cluster(head_resources: Dict[str, float], worker_resources: Dict[str, float],
                     num_cpus: int = 1, token: Optional[str] = None,
                     start_timeout_s: float = 60, worker_niceness: Optional[int] = None
                     ) -> Iterator[LocalCluster]:
    """Starts head and worker (`num_cpus` logical CPUs each, plus their custom resources).

    `token`: the auth token (default: a fresh random one). A driver in this
    process must have RAY_AUTH_MODE=token and RAY_AUTH_TOKEN set before it
    imports ray (which reads the auth mode once): such a driver sets both
    first and passes its token here.
    Yields once the head accepts connections; the worker may take a few more
    seconds to join (check `ray.nodes()` from the driver). `cluster.kill_node`
    and `cluster.add_node` lose a worker node and start a replacement.
    `worker_niceness`: the nice value of the nodes' Ray worker processes
    (RAY_worker_niceness; Ray's default is 15). On one busy shared machine,
    15 can starve an actor that restarts while the driver computes: its
    constructor then takes minutes instead of seconds; 0 is what a node with
    CPUs of its own gives it.
    """
    temp_dir = tempfile.mkdtemp(prefix="rmc", dir="/tmp")  # short: Ray's socket paths < 108 chars
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token or os.urandom(32).hex(),
           "RAY_TMPDIR": temp_dir}
    env.pop("RAY_ADDRESS", None)
    if worker_niceness is not None:
        env["RAY_worker_niceness"] = str(worker_niceness)
    port = free_port()
    address = f"127.0.0.1:{port}"
    cluster = LocalCluster(address, env, os.path.join(temp_dir, "nodes.log"), num_cpus)
    try:
        with open(cluster.log_path, "w") as log:
            cluster.nodes.append(subprocess.Popen(
                _ray_start(num_cpus, temp_dir)
                + ["--head", f"--port={port}", "--include-dashboard=false",
                   f"--dashboard-agent-listen-port={free_port()}", "--resources=" + json.dumps(head_resources)],
                env=env, stdout=log, stderr=subprocess.STDOUT))
        deadline = time.time() + start_timeout_s
        while True:  # the GCS port accepts connections once the head is up
            if cluster.nodes[0].poll() is not None or time.time() > deadline:
                raise RuntimeError(f"the Ray head node did not start:\n{cluster.log_tail()}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.5)
        cluster.add_node(worker_resources)
        yield cluster
    finally:
        for node in reversed(cluster.nodes):
            _stop(node)
        kill_processes_under(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)
