"""The control-plane process: object store, recovery, and the HTTP server on loopback and the
container network's gateway (so containers reach it while nothing else on the network can)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import socket
import sys
import time

import uvicorn

from emulator import contracts
from emulator.api.app import create_app
from emulator.api.console_routes import end_streams
from emulator.config import Settings, load_settings
from emulator.control_plane import assemble
from emulator.runtime.container_runtime import RuntimeUnavailable
from emulator.runtime.docker_engine import DockerEngine
from emulator.store.seaweed_server import SeaweedServer, StoreStartError

log = logging.getLogger("pipelocal")


class StartError(RuntimeError):
    """Start-up failed for a reason the user can fix; the message says how."""


def bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise StartError(f"Port {port} on {host} is already in use. Stop what uses it "
                             f"(`pipelocal down` if it is an earlier pipelocal) or set PIPELOCAL_PORT to a free port.") from None
        raise
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGTERM after shutting down, which would skip stopping the store;
    the handlers installed in `serve` only ask it to exit."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


def serve(settings: Settings) -> None:
    runtime = DockerEngine(installation=str(settings.home))
    try:
        runtime.ping()
        gateway = runtime.ensure_network()
    except RuntimeUnavailable as exc:
        raise StartError(str(exc)) from None
    if settings.bind:  # inside a container the gateway is not ours to bind
        sockets = [bind(settings.bind, settings.port)]
    else:
        sockets = [bind("127.0.0.1", settings.port), bind(gateway, settings.port)]
    store_server = None
    if settings.embedded_store:
        store_server = SeaweedServer(settings.store_dir, settings.s3_port, settings.s3_access_key,
                                     settings.s3_secret_key, settings.run_dir / "store.log")
        try:
            store_server.start()
        except StoreStartError as exc:
            raise StartError(str(exc)) from None
    cp = None
    try:
        cp = assemble(settings, runtime, gateway)
        if not settings.embedded_store:  # a store started beside us (docker-compose) may still be starting
            deadline = time.monotonic() + 60
            while not cp.store.healthy():
                if time.monotonic() > deadline:
                    raise StartError(f"The S3 store at {settings.store_url} did not answer within 60 s; "
                                     f"check PIPELOCAL_S3_ENDPOINT and that the store runs.")
                time.sleep(0.5)
        cp.store.ensure_bucket(settings.artifact_bucket)
        cp.store.wait_writable(settings.artifact_bucket)
        report = cp.recover()
        for kind, ids in report.items():
            for item in ids:
                log.warning("%s %s was in progress when pipelocal stopped: ended as interrupted", kind[:-1], item)
        app = create_app(cp)
        cp.handed_builds.publish_token(settings.run_dir)
        config = uvicorn.Config(app, log_level=os.environ.get("PIPELOCAL_LOG_LEVEL", "warning"),
                                timeout_keep_alive=30, timeout_graceful_shutdown=5)
        server = _Server(config)
        (settings.run_dir / "server.pid").write_text(str(os.getpid()))

        def stop(*_) -> None:
            end_streams()  # the console's event streams never end by themselves
            server.should_exit = True

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, stop)
        asyncio.run(server.serve(sockets=sockets))
    finally:
        try:
            if cp is not None:
                cp.shutdown()
        finally:
            (settings.run_dir / contracts.LOCAL_BUILD_TOKEN_FILE).unlink(missing_ok=True)
            if store_server:
                store_server.stop()
            (settings.run_dir / "server.pid").unlink(missing_ok=True)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = load_settings()
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    try:
        serve(settings)
    except StartError as exc:
        print(f"pipelocal: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    code = main()
    # Worker threads may still wait on an agent or a manual approval; every state change is
    # already on disk and recovery ends them on the next start, so nothing is gained by joining them.
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)
