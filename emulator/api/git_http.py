"""Smart HTTP git served by `git http-backend`, with push detection (branches and tags) for pipeline triggers."""

from __future__ import annotations

import asyncio
import os
from typing import Callable

from fastapi import APIRouter, Request, Response

from emulator.services.codecommit.repositories import Repositories

PushListener = Callable[[str, dict[str, str], dict[str, str]], None]


def git_router(repos: Repositories, on_push: PushListener, on_tags: PushListener | None = None) -> APIRouter:
    """`on_push` hears branch changes (name -> commit before and after), `on_tags` tag changes."""
    router = APIRouter()

    @router.api_route("/v1/repos/{name}/{path:path}", methods=["GET", "POST"], include_in_schema=False)
    async def serve(name: str, path: str, request: Request) -> Response:
        name = name.removesuffix(".git")
        if not repos.db.get("codecommit-repository", name):
            return Response(f"repository {name} does not exist\n", status_code=404, media_type="text/plain")
        body = await request.body()
        pushing = path.endswith("git-receive-pack") and request.method == "POST"
        before = repos.branches(name) if pushing else {}
        tags_before = repos.tags(name) if pushing and on_tags else {}
        status, headers, payload = await asyncio.to_thread(_run_backend, repos, name, path, request, body)
        if pushing:
            after = repos.branches(name)
            if after != before:
                await asyncio.to_thread(on_push, name, before, after)
            tags_after = repos.tags(name) if on_tags else {}
            if tags_after != tags_before:
                await asyncio.to_thread(on_tags, name, tags_before, tags_after)
        return Response(payload, status_code=status, headers=headers)

    return router


def _run_backend(repos: Repositories, name: str, path: str, request: Request, body: bytes):
    import subprocess

    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GIT_PROJECT_ROOT": str(repos.root),
        "GIT_HTTP_EXPORT_ALL": "1",
        "REMOTE_USER": "pipelocal",
        "REMOTE_ADDR": request.client.host if request.client else "127.0.0.1",
        "REQUEST_METHOD": request.method,
        "PATH_INFO": f"/{name}.git/{path}",
        "QUERY_STRING": request.url.query,
        "CONTENT_TYPE": request.headers.get("content-type", ""),
        "CONTENT_LENGTH": str(len(body)),
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    if request.headers.get("content-encoding"):
        env["HTTP_CONTENT_ENCODING"] = request.headers["content-encoding"]
    if request.headers.get("git-protocol"):
        env["GIT_PROTOCOL"] = request.headers["git-protocol"]
    proc = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True)
    head, _, payload = proc.stdout.partition(b"\r\n\r\n")
    if not _:
        head, _, payload = proc.stdout.partition(b"\n\n")
    status = 200
    headers: dict[str, str] = {}
    for line in head.decode("latin-1").splitlines():
        if ":" not in line:
            continue
        key, value = line.split(":", 1)
        if key.lower() == "status":
            status = int(value.strip().split()[0])
        else:
            headers[key.strip()] = value.strip()
    if proc.returncode != 0 and not proc.stdout:
        return 500, {"Content-Type": "text/plain"}, proc.stderr or b"git http-backend failed\n"
    return status, headers, payload
