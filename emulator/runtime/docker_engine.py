"""`ContainerRuntime` on the Docker engine, through the docker SDK."""

from __future__ import annotations

import codecs
import socket
import threading
from typing import Iterator

import docker
import docker.errors
from docker.utils.socket import frames_iter

from emulator.runtime.container_runtime import (
    LABEL_INSTALLATION,
    LABEL_MANAGED,
    NETWORK_NAME,
    ContainerInfo,
    ContainerSpec,
    ImageMissing,
    RuntimeUnavailable,
)

# The Engine API version a short-lived CLI asks for without negotiating (Docker 20.10 and later).
CLI_API_VERSION = "1.41"
_NOT_RUNNING = (
    "Docker is not reachable ({error}). Start the Docker engine (for example "
    "`sudo service docker start`) or point DOCKER_HOST at it, then run the command again."
)


class DockerEngine:
    def __init__(self, installation: str | None = None, api_version: str | None = None) -> None:
        """`api_version`: a fixed Engine API version (a short-lived CLI skips the version negotiation
        and the ping); None negotiates, as the control plane does."""
        self.installation = installation
        self._client: docker.DockerClient | None = None
        self._lock = threading.Lock()
        self._gateway: str | None = None
        self.api_version = api_version
        self._attached: dict = {}  # container name -> its attach socket, read by logs()
        self._self_removing: set[str] = set()

    @property
    def client(self) -> docker.DockerClient:
        with self._lock:
            if self._client is None:
                try:
                    self._client = docker.from_env(timeout=120, version=self.api_version)
                    if self.api_version is None:
                        self._client.ping()
                except Exception as exc:  # the SDK raises several types for the same problem
                    self._client = None
                    raise RuntimeUnavailable(_NOT_RUNNING.format(error=_short(exc))) from None
            return self._client

    def ping(self) -> None:
        try:
            self.client.ping()
        except RuntimeUnavailable:
            raise
        except Exception as exc:
            raise RuntimeUnavailable(_NOT_RUNNING.format(error=_short(exc))) from None

    # ------------------------------------------------------------ network

    def ensure_network(self) -> str:
        """Creates the project network if needed and returns the host's address on it."""
        if self._gateway:
            return self._gateway
        try:
            net = self.client.networks.get(NETWORK_NAME)
        except docker.errors.NotFound:
            net = self.client.networks.create(
                NETWORK_NAME, driver="bridge", labels={LABEL_MANAGED: "true"}
            )
            net.reload()
        configs = (net.attrs.get("IPAM") or {}).get("Config") or []
        gateway = next((c.get("Gateway") for c in configs if c.get("Gateway")), None)
        if not gateway:
            raise RuntimeUnavailable(f"Docker network {NETWORK_NAME!r} has no gateway address")
        self._gateway = gateway
        return gateway

    def gateway_address(self) -> str:
        return self.ensure_network()

    # ------------------------------------------------------------ images

    def image_exists(self, image: str) -> bool:
        try:
            self.client.images.get(image)
            return True
        except docker.errors.ImageNotFound:
            return False

    # ------------------------------------------------------------ containers

    def start(self, spec: ContainerSpec) -> ContainerInfo:
        """Created, attached (stdout, stderr and, with `spec.stdin`, stdin) before it starts, as
        `docker run` does, so a container that removes itself on exit never loses its output; the
        SDK's low-level API, so no call is made that the start does not need."""
        return self._start(spec, hold_input=False)

    def start_waiting(self, spec: ContainerSpec) -> None:
        """Started like `start`, but `spec.stdin` is not written: the container waits in its first
        read until `feed` gives it its input."""
        if spec.stdin is None:
            raise ValueError("start_waiting needs a container that reads its standard input")
        self._start(spec, hold_input=True)

    def feed(self, waiting: str, name: str, data: bytes) -> ContainerInfo:
        """A container left by `start_waiting` takes the name `name` and gets `data` as its input.
        If that fails the container is gone (removed here), and `name` is free for a new one."""
        attached = self._attached.pop(waiting, None)
        if attached is None:
            raise ValueError(f"{waiting} is not a container waiting for its input")
        self_removing = waiting in self._self_removing
        self._self_removing.discard(waiting)
        current = waiting
        try:
            self.client.api.rename(waiting, name)
            current = name
            raw = getattr(attached, "_sock", attached)
            raw.sendall(data)
            raw.shutdown(socket.SHUT_WR)
        except Exception:
            attached.close()
            try:
                self.client.api.remove_container(current, force=True)
            except docker.errors.APIError:
                pass
            raise
        self._attached[name] = attached
        if self_removing:
            self._self_removing.add(name)
        return ContainerInfo(id=name, name=name, status="running", labels={}, address=None, ports={})

    def _start(self, spec: ContainerSpec, hold_input: bool) -> ContainerInfo:
        api = self.client.api
        if spec.network:
            self.ensure_network()
        labels = {**self._own_labels(), **spec.labels}
        host = dict(init=True, privileged=spec.privileged, auto_remove=spec.auto_remove)
        if spec.network:
            host["network_mode"] = spec.network
        if spec.publish:
            host["port_bindings"] = {port: ("127.0.0.1", h) if h else ("127.0.0.1",) for port, h in spec.publish.items()}
        if spec.mounts:
            host["binds"] = {m[0]: {"bind": m[1], "mode": m[2] if len(m) > 2 else "ro"} for m in spec.mounts}
        if spec.cpus:
            host["nano_cpus"] = int(spec.cpus * 1e9)
        if spec.memory_mb:
            host["mem_limit"] = f"{spec.memory_mb}m"
        try:
            created = api.create_container(
                spec.image, spec.command, name=spec.name, environment=spec.env, labels=labels,
                working_dir=spec.working_dir, hostname=spec.hostname, ports=list(spec.publish) or None,
                detach=spec.stdin is None, stdin_open=spec.stdin is not None,  # with stdin: StdinOnce
                host_config=api.create_host_config(**host))
        except docker.errors.ImageNotFound:
            raise ImageMissing(f"The image {spec.image} is not built yet. Run `pipelocal images` to build it.") \
                from None
        container_id = created["Id"]
        try:
            for path, archive in spec.files.items():
                api.put_archive(container_id, path, archive)
            attached = None
            if spec.stdin is not None or spec.auto_remove:  # someone reads it: logs() (an unread attach would
                # hold back a long-running container's output)
                params = {"stdout": 1, "stderr": 1, "stream": 1, **({"stdin": 1} if spec.stdin is not None else {})}
                attached = self._attached[spec.name] = api.attach_socket(container_id, params=params)
            api.start(container_id)
            if spec.stdin is not None and not hold_input:
                raw = getattr(attached, "_sock", attached)
                raw.sendall(spec.stdin() if callable(spec.stdin) else spec.stdin)
                raw.shutdown(socket.SHUT_WR)  # end of input: the container's stdin closes
        except Exception:
            self._attached.pop(spec.name, None)
            api.remove_container(container_id, force=True)
            raise
        if spec.auto_remove:  # it may be gone already: nothing to inspect
            self._self_removing.add(spec.name)
            return ContainerInfo(id=container_id, name=spec.name, status="running", labels=labels, address=None,
                                 ports={})
        info = self.inspect(container_id)
        assert info is not None
        return info

    def inspect(self, name_or_id: str) -> ContainerInfo | None:
        try:
            container = self.client.containers.get(name_or_id)
        except docker.errors.NotFound:
            return None
        return _info(container)

    def wait(self, name_or_id: str, timeout: float | None = None) -> int | None:
        try:  # the low-level API: no inspect round trip per call (it counts on short builds)
            result = self.client.api.wait(name_or_id, timeout=timeout)
        except Exception as exc:  # requests' ReadTimeout / ConnectionError on timeout
            if "timed out" in str(exc).lower() or "timeout" in type(exc).__name__.lower():
                return None
            raise
        return int(result.get("StatusCode", -1))

    def logs(self, name_or_id: str, follow: bool = False) -> Iterator[str]:
        """stdout and stderr in the order written; from the attach made at start when there is one."""
        attached = self._attached.pop(name_or_id, None)
        if attached is not None:
            decoder = codecs.getincrementaldecoder("utf-8")("replace")
            try:
                for _stream, data in frames_iter(attached, tty=False):
                    yield decoder.decode(data)
            finally:
                attached.close()
            return
        for chunk in self.client.api.logs(name_or_id, stream=True, follow=follow):
            yield chunk.decode("utf-8", "replace")

    def copy_from(self, name_or_id: str, path: str) -> Iterator[bytes]:
        stream, _stat = self.client.api.get_archive(name_or_id, path)
        yield from stream

    def exec(self, name_or_id: str, command: list[str], interactive: bool = False) -> int:
        if interactive:  # the SDK cannot hand a TTY to this terminal; the docker CLI can
            import subprocess

            return subprocess.call(["docker", "exec", "-it", name_or_id, *command])
        result = self.client.containers.get(name_or_id).exec_run(command)
        return int(result.exit_code)

    def stop(self, name_or_id: str, timeout: int = 5) -> None:
        try:
            self.client.containers.get(name_or_id).stop(timeout=timeout)
        except docker.errors.NotFound:
            pass

    def remove(self, name_or_id: str) -> None:
        """A container started with auto_remove removes itself: nothing to wait for."""
        attached = self._attached.pop(name_or_id, None)
        if attached is not None:
            attached.close()
        if name_or_id in self._self_removing:
            self._self_removing.discard(name_or_id)
            return
        try:
            self.client.api.remove_container(name_or_id, force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if "already in progress" not in str(exc):
                raise

    def _own_labels(self) -> dict[str, str]:
        own = {LABEL_MANAGED: "true"}
        if self.installation:
            own[LABEL_INSTALLATION] = self.installation
        return own

    def list(self, labels: dict[str, str]) -> list[ContainerInfo]:
        filters = {"label": [f"{k}={v}" for k, v in {**self._own_labels(), **labels}.items()]}
        # ignore_removed: a container that removes itself between the listing and its inspection is left out
        return [_info(c) for c in self.client.containers.list(all=True, filters=filters, ignore_removed=True)]


def _info(container) -> ContainerInfo:
    attrs = container.attrs
    networks = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
    address = (networks.get(NETWORK_NAME) or {}).get("IPAddress") or None
    ports: dict[int, int] = {}
    for key, bindings in ((attrs.get("NetworkSettings") or {}).get("Ports") or {}).items():
        if bindings:
            ports[int(key.split("/")[0])] = int(bindings[0]["HostPort"])
    return ContainerInfo(
        id=container.id,
        name=container.name,
        status=container.status,
        labels=dict(container.labels or {}),
        address=address,
        ports=ports,
    )


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]
