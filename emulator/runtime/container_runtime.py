"""The one interface between pipelocal and a container engine.

Services ask for containers through `ContainerRuntime`; only `docker_engine` (the docker SDK) knows
Docker.
Every container pipelocal starts carries the label `LABEL_MANAGED`, so leftovers can be found
after a crash and handled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator, Protocol

LABEL_MANAGED = "pipelocal.managed"
LABEL_ROLE = "pipelocal.role"  # build | instance | store | control-plane
LABEL_OWNER = "pipelocal.owner"  # build id or instance name
LABEL_INSTALLATION = "pipelocal.installation"  # the data directory, so installations never touch each other's containers
NETWORK_NAME = "pipelocal"


class RuntimeUnavailable(RuntimeError):
    """The container engine cannot be reached; the message says how to fix it."""


class ImageMissing(RuntimeError):
    """A required image is not built yet; the message says how to build it."""


@dataclass
class ContainerSpec:
    image: str
    name: str
    command: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    publish: dict[int, int | None] = field(default_factory=dict)  # container port -> host port (None = any)
    network: str | None = NETWORK_NAME
    cpus: float | None = None
    memory_mb: int | None = None
    privileged: bool = False
    files: dict[str, bytes] = field(default_factory=dict)  # path in container -> tar archive to unpack there
    hostname: str | None = None
    mounts: list[tuple[str, ...]] = field(default_factory=list)  # (host dir, container dir[, "rw"]); read-only by default
    # the engine may remove the container by itself once it exits (callers still call remove(), which then
    # need not wait); for a container nobody reads files from after it exits
    auto_remove: bool = False
    # written to the container's standard input once it has started, then closed (no other way in:
    # cheaper than `files`, which makes the engine mount the container's filesystem once more); a
    # function returning the bytes is called while the engine starts the container
    stdin: bytes | Callable[[], bytes] | None = None


@dataclass
class ContainerInfo:
    id: str
    name: str
    status: str  # created | running | exited | ...
    labels: dict[str, str]
    address: str | None  # address on NETWORK_NAME
    ports: dict[int, int]  # container port -> host port on 127.0.0.1


class ContainerRuntime(Protocol):
    def ping(self) -> None: ...

    def gateway_address(self) -> str:
        """Address of the host as the containers on NETWORK_NAME see it."""
        ...

    def image_exists(self, image: str) -> bool: ...

    def start(self, spec: ContainerSpec) -> ContainerInfo: ...

    def start_waiting(self, spec: ContainerSpec) -> None:
        """Started with `spec.stdin` not yet written (so the container waits in its first read)."""
        ...

    def feed(self, waiting: str, name: str, data: bytes) -> ContainerInfo:
        """A container left by `start_waiting` is renamed `name` and gets `data` on its standard input."""
        ...

    def inspect(self, name_or_id: str) -> ContainerInfo | None: ...

    def wait(self, name_or_id: str, timeout: float | None = None) -> int | None:
        """Exit code, or None if the container still runs after `timeout` seconds."""
        ...

    def logs(self, name_or_id: str, follow: bool = False) -> Iterator[str]: ...

    def copy_from(self, name_or_id: str, path: str) -> Iterator[bytes]:
        """A tar stream of `path` inside the container (running or stopped)."""
        ...

    def exec(self, name_or_id: str, command: list[str], interactive: bool = False) -> int:
        """Runs a command in a running container; interactive: attached to this terminal. Exit code."""
        ...

    def stop(self, name_or_id: str, timeout: int = 5) -> None: ...

    def remove(self, name_or_id: str) -> None: ...

    def list(self, labels: dict[str, str]) -> list[ContainerInfo]: ...
