"""`ContainerRuntime` on the Docker Engine API over its unix socket, with the standard library only.

For short-lived CLI processes (`pipelocal build`): importing the docker SDK (requests, urllib3)
takes about 0.1 s, a third of a whole trivial build. The control plane keeps `DockerEngine`.
Output is read through an attach made before the container starts (as `docker run` does), so
a container that removes itself on exit (`ContainerSpec.auto_remove`) never loses its output
and nobody waits for its removal.
"""

from __future__ import annotations

import codecs
import json
import os
import socket
import struct
from typing import Callable, Iterator
from urllib.parse import quote, urlencode

from emulator.runtime.container_runtime import (
    LABEL_INSTALLATION,
    LABEL_MANAGED,
    ContainerInfo,
    ContainerSpec,
    ImageMissing,
    RuntimeUnavailable,
)

DEFAULT_SOCKET = "/var/run/docker.sock"
_NOT_RUNNING = (
    "Docker is not reachable ({error}). Start the Docker engine (for example "
    "`sudo service docker start`) or point DOCKER_HOST at it, then run the command again."
)


class DockerApiError(RuntimeError):
    def __init__(self, status: int, message: str):
        super().__init__(f"Docker API {status}: {message}")
        self.status = status
        self.message = message


def socket_path(env: dict[str, str] | None = None) -> str | None:
    """The engine's unix socket, or None when DOCKER_HOST names another transport (tcp, ssh)."""
    host = (os.environ if env is None else env).get("DOCKER_HOST", "")
    if not host:
        return DEFAULT_SOCKET
    return host[len("unix://"):] if host.startswith("unix://") else None


def local_engine(installation: str | None = None):
    """The fastest runtime for a CLI process: this client on a unix socket, else the SDK engine."""
    path = socket_path()
    if path is None:
        from emulator.runtime.docker_engine import DockerEngine

        return DockerEngine(installation=installation)
    return DockerSocketEngine(path, installation=installation)


class _Response:
    """One HTTP/1.1 response read straight off the socket (http.client would import ssl and email)."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.file = sock.makefile("rb")
        parts = self.file.readline().decode("latin-1").split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            self.close()
            raise RuntimeUnavailable(_NOT_RUNNING.format(error="the Docker socket answered something other than HTTP"))
        self.status = int(parts[1])
        self.headers: dict[str, str] = {}
        while (line := self.file.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self._chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        length = self.headers.get("content-length")
        self._left = int(length) if length is not None and not self._chunked else None  # None: until EOF
        if self.status in (204, 304):
            self._left = 0
        if self.status == 101:  # an upgraded connection: raw bytes until the engine closes it
            self._chunked, self._left = False, None

    def read1(self, size: int = 65536) -> bytes:
        """Up to `size` bytes of the body, b"" at its end."""
        if self._chunked:
            if self._left in (None, 0):
                line = self.file.readline()
                if self._left == 0:  # the CRLF after the previous chunk
                    line = self.file.readline()
                self._left = int(line.split(b";")[0].strip() or b"0", 16)
                if self._left == 0:
                    self._chunked = False
                    return b""
            data = self.file.read1(min(size, self._left))
            self._left -= len(data)
            return data
        if self._left == 0:
            return b""
        data = self.file.read1(size if self._left is None else min(size, self._left))
        if self._left is not None:
            self._left -= len(data)
        return data

    def read(self) -> bytes:
        parts = []
        while chunk := self.read1():
            parts.append(chunk)
        return b"".join(parts)

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def _connect(path: str, timeout: float | None) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
    except OSError as exc:
        sock.close()
        raise RuntimeUnavailable(_NOT_RUNNING.format(error=f"{path}: {exc.strerror or exc}")) from None
    return sock


class DockerSocketEngine:
    def __init__(self, path: str = DEFAULT_SOCKET, installation: str | None = None):
        self.path = path
        self.installation = installation
        self._attached: dict[str, _Response] = {}  # container name -> its attach stream
        self._self_removing: set[str] = set()

    # ------------------------------------------------------------ HTTP

    def _request(self, method: str, path: str, body: bytes | dict | None = None, query: dict | None = None,
                 timeout: float | None = 120, content_type: str = "application/json",
                 ok: tuple[int, ...] = (), upgrade: bool = False,
                 meanwhile: Callable[[], None] | None = None) -> _Response:
        data = json.dumps(body).encode() if isinstance(body, dict) else body or b""
        url = quote(path, safe="/") + (f"?{urlencode(query)}" if query else "")
        head = f"{method} {url} HTTP/1.1\r\nHost: docker\r\nContent-Length: {len(data)}\r\n"
        if data:
            head += f"Content-Type: {content_type}\r\n"
        if upgrade:  # as the docker CLI asks for an attach: the connection becomes a raw stream both ways
            head += "Connection: Upgrade\r\nUpgrade: tcp\r\n"
        sock = _connect(self.path, timeout)
        try:
            sock.sendall(head.encode() + b"\r\n" + data)
            if meanwhile is not None:
                meanwhile()  # while the engine works on the request
            response = _Response(sock)
        except BaseException:
            sock.close()
            raise
        if response.status >= 400 and response.status not in ok:
            raw = response.read()
            response.close()
            try:
                message = json.loads(raw).get("message", raw.decode(errors="replace"))
            except ValueError:
                message = raw.decode(errors="replace")
            raise DockerApiError(response.status, message.strip())
        return response

    def _call(self, method: str, path: str, body=None, query=None, ok: tuple[int, ...] = (),
              timeout: float | None = 120, content_type: str = "application/json",
              meanwhile: Callable[[], None] | None = None) -> tuple[int, bytes]:
        response = self._request(method, path, body, query, timeout, content_type, ok, meanwhile=meanwhile)
        try:
            return response.status, response.read()
        finally:
            response.close()

    # ------------------------------------------------------------ ContainerRuntime

    def ping(self) -> None:
        self._call("GET", "/_ping")

    def gateway_address(self) -> str:
        raise NotImplementedError("the unix-socket engine serves local builds, which join no pipelocal network")

    def image_exists(self, image: str) -> bool:
        status, _ = self._call("GET", f"/images/{image}/json", ok=(404,))
        return status == 200

    def start(self, spec: ContainerSpec) -> ContainerInfo:
        labels = {LABEL_MANAGED: "true", **({LABEL_INSTALLATION: self.installation} if self.installation else {}),
                  **spec.labels}
        host: dict = {"Init": True, "Privileged": spec.privileged, "AutoRemove": spec.auto_remove}
        if spec.network:
            host["NetworkMode"] = spec.network
        if spec.cpus:
            host["NanoCpus"] = int(spec.cpus * 1e9)
        if spec.memory_mb:
            host["Memory"] = spec.memory_mb * 1024 * 1024
        if spec.mounts:
            host["Binds"] = [f"{m[0]}:{m[1]}:{m[2] if len(m) > 2 else 'ro'}" for m in spec.mounts]
        if spec.publish:
            host["PortBindings"] = {f"{port}/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(h or "")}]
                                    for port, h in spec.publish.items()}
        config = {"Image": spec.image, "Cmd": spec.command, "Env": [f"{k}={v}" for k, v in spec.env.items()],
                  "Labels": labels, "WorkingDir": spec.working_dir or "", "Hostname": spec.hostname or "",
                  "HostConfig": host}
        if spec.stdin is not None:
            config.update(OpenStdin=True, StdinOnce=True, AttachStdin=True)
        try:
            _, raw = self._call("POST", "/containers/create", config, {"name": spec.name})
        except DockerApiError as exc:
            if exc.status == 404 and "image" in exc.message.lower():
                raise ImageMissing(f"The image {spec.image} is not built yet. Run `pipelocal images` to build it.") from None
            raise
        container_id = json.loads(raw)["Id"]
        try:
            for path, archive in spec.files.items():
                self._call("PUT", f"/containers/{container_id}/archive", archive, {"path": path},
                           content_type="application/x-tar")
            self._attached[spec.name] = attached = self._attach(container_id, spec.stdin is not None)
            stdin: list[bytes] = []
            # the input is made while the engine starts the container (a function: see ContainerSpec.stdin)
            self._call("POST", f"/containers/{container_id}/start",
                       meanwhile=(lambda: stdin.append(spec.stdin())) if callable(spec.stdin) else None)
            if spec.stdin is not None:
                attached.sock.sendall(stdin[0] if stdin else spec.stdin)
                attached.sock.shutdown(socket.SHUT_WR)  # end of input: the container's stdin closes
        except BaseException:
            self._attached.pop(spec.name, None)
            self._call("DELETE", f"/containers/{container_id}", query={"force": "1"}, ok=(404, 409))
            raise
        if spec.auto_remove:
            self._self_removing.add(spec.name)
        return ContainerInfo(id=container_id, name=spec.name, status="running", labels=labels, address=None, ports={})

    def _attach(self, container_id: str, stdin: bool) -> _Response:
        query = {"stream": "1", "stdout": "1", "stderr": "1", **({"stdin": "1"} if stdin else {})}
        return self._request("POST", f"/containers/{container_id}/attach", query=query, timeout=None, upgrade=True)

    def inspect(self, name_or_id: str) -> ContainerInfo | None:
        status, raw = self._call("GET", f"/containers/{name_or_id}/json", ok=(404,))
        if status == 404:
            return None
        attrs = json.loads(raw)
        return ContainerInfo(id=attrs["Id"], name=attrs["Name"].lstrip("/"),
                             status=(attrs.get("State") or {}).get("Status", ""),
                             labels=(attrs.get("Config") or {}).get("Labels") or {}, address=None, ports={})

    def wait(self, name_or_id: str, timeout: float | None = None) -> int | None:
        try:
            status, raw = self._call("POST", f"/containers/{name_or_id}/wait", timeout=timeout, ok=(404,))
        except (socket.timeout, TimeoutError):
            return None
        return None if status == 404 else int(json.loads(raw).get("StatusCode", -1))

    def logs(self, name_or_id: str, follow: bool = False) -> Iterator[str]:
        """stdout and stderr in the order written; from the attach made at start when there is one."""
        response = self._attached.pop(name_or_id, None)
        if response is None:
            response = self._request("GET", f"/containers/{name_or_id}/logs", timeout=None,
                                     query={"stdout": "1", "stderr": "1", "follow": "1" if follow else "0"})
        yield from _demultiplex(response)

    def copy_from(self, name_or_id: str, path: str) -> Iterator[bytes]:
        response = self._request("GET", f"/containers/{name_or_id}/archive", query={"path": path})
        try:
            while chunk := response.read1():
                yield chunk
        finally:
            response.close()

    def exec(self, name_or_id: str, command: list[str], interactive: bool = False) -> int:
        if interactive:  # a TTY handed to this terminal: the docker CLI does that
            import subprocess

            return subprocess.call(["docker", "exec", "-it", name_or_id, *command])
        _, raw = self._call("POST", f"/containers/{name_or_id}/exec",
                            {"Cmd": command, "AttachStdout": True, "AttachStderr": True})
        exec_id = json.loads(raw)["Id"]
        self._call("POST", f"/exec/{exec_id}/start", {"Detach": False, "Tty": False}, timeout=None)
        _, raw = self._call("GET", f"/exec/{exec_id}/json")
        return int(json.loads(raw).get("ExitCode") or 0)

    def stop(self, name_or_id: str, timeout: int = 5) -> None:
        self._call("POST", f"/containers/{name_or_id}/stop", query={"t": str(timeout)},
                   ok=(304, 404), timeout=timeout + 60)

    def remove(self, name_or_id: str) -> None:
        """A container started with auto_remove removes itself: nothing to wait for."""
        if name_or_id in self._self_removing:
            self._self_removing.discard(name_or_id)
            return
        self._call("DELETE", f"/containers/{name_or_id}", query={"force": "1"}, ok=(404, 409))

    def list(self, labels: dict[str, str]) -> list[ContainerInfo]:
        own = {LABEL_MANAGED: "true", **({LABEL_INSTALLATION: self.installation} if self.installation else {})}
        filters = json.dumps({"label": [f"{k}={v}" for k, v in {**own, **labels}.items()]})
        _, raw = self._call("GET", "/containers/json", query={"all": "1", "filters": filters})
        return [ContainerInfo(id=c["Id"], name=(c.get("Names") or ["/"])[0].lstrip("/"), status=c.get("State", ""),
                              labels=c.get("Labels") or {}, address=None, ports={}) for c in json.loads(raw)]


def _demultiplex(response: _Response) -> Iterator[str]:
    """The engine's multiplexed stream (8-byte frame headers) of a container without a TTY, as text."""
    decoders = {1: codecs.getincrementaldecoder("utf-8")("replace"), 2: codecs.getincrementaldecoder("utf-8")("replace")}
    try:
        while True:
            header = _read_exactly(response, 8)
            if len(header) < 8:
                return
            stream, size = header[0], struct.unpack(">I", header[4:])[0]
            payload = _read_exactly(response, size)
            text = decoders.get(stream, decoders[1]).decode(payload)
            if text:
                yield text
            if len(payload) < size:
                return
    finally:
        response.close()


def _read_exactly(response: _Response, size: int) -> bytes:
    parts, missing = [], size
    while missing:
        chunk = response.read1(missing)
        if not chunk:
            break
        parts.append(chunk)
        missing -= len(chunk)
    return b"".join(parts)
