"""The internal API runners and agents call; schemas are the dataclasses of `emulator.contracts`."""

from __future__ import annotations

import json
import secrets
import threading

from fastapi import APIRouter, Header, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from emulator import contracts
from emulator.control_plane import ControlPlane
from emulator.services.codebuild.handed_builds import PENDING, NotHere


def internal_router(cp: ControlPlane) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def build_auth(build_id: str, token: str | None) -> None:
        if not cp.builds.check_token(build_id, token):
            raise HTTPException(403, "unknown build or wrong token")

    def agent_auth(instance: str, token: str | None) -> None:
        if not cp.fleet.check_token(instance, token):
            raise HTTPException(403, "unknown instance or wrong token")

    async def body(request: Request, cls):
        try:
            return contracts.decode(cls, await request.json())
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise HTTPException(422, f"invalid {cls.__name__}: {exc}") from None

    token_header = Header(default=None, alias=contracts.TOKEN_HEADER)

    @router.get(contracts.BUILD_PLAN)
    def plan(build_id: str, token: str | None = token_header):
        build_auth(build_id, token)
        return contracts.encode(cp.builds.plan(build_id))

    @router.post(contracts.BUILD_PHASES)
    async def phases(build_id: str, request: Request, token: str | None = token_header):
        build_auth(build_id, token)
        cp.builds.report_phase(build_id, await body(request, contracts.PhaseReport))
        return {"ok": True}

    @router.post(contracts.BUILD_LOGS)
    async def logs(build_id: str, request: Request, token: str | None = token_header):
        build_auth(build_id, token)
        cp.builds.append_log(build_id, await body(request, contracts.LogChunk))
        return {"ok": True}

    @router.post(contracts.BUILD_RESULT)
    async def result(build_id: str, request: Request, token: str | None = token_header):
        build_auth(build_id, token)
        cp.builds.report_result(build_id, await body(request, contracts.RunnerResult))
        return {"ok": True}

    @router.post(contracts.LOCAL_BUILDS)
    async def local_build(request: Request, token: str | None = token_header):
        handed = cp.handed_builds
        loopback = request.client is not None and request.client.host in ("127.0.0.1", "::1")
        if handed is None or not loopback or not handed.check_token(token):
            raise HTTPException(403, "local builds are taken from this machine's pipelocal command only")
        build_request = await body(request, contracts.LocalBuildRequest)
        try:
            build = await run_in_threadpool(handed.start, build_request)
        except NotHere as exc:
            raise HTTPException(409, str(exc)) from None

        async def lines():
            build.begin()  # only now: a caller gone before its answer started leaves no build behind
            try:
                while (event := await run_in_threadpool(build.next_event, 0.5)) is not None:
                    if event is not PENDING:
                        yield json.dumps(event) + "\n"
            finally:
                # nothing once it has ended; the caller went away otherwise. On a thread: the
                # engine's stop takes a second, and this loop serves every other request meanwhile
                threading.Thread(target=build.stop, daemon=True).start()

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    @router.post(contracts.AGENT_REGISTER)
    async def register(request: Request, token: str | None = token_header):
        reg = await body(request, contracts.InstanceRegistration)
        expected = cp.settings.registration_token
        if expected and token and secrets.compare_digest(token, expected):
            cp.fleet.register_external(reg.instance_name, reg.tags, reg.address, token, reg.app_url)
        agent_auth(reg.instance_name, token)
        cp.db.update("instance", reg.instance_name, agentVersion=reg.agent_version, agentRegistered=True)
        return {"ok": True}

    def record_host(instance: str, raw: bytes) -> None:
        """Host metrics ride along with polls; a sample that cannot be read never fails the poll."""
        publisher = getattr(cp, "host_metrics", None)
        if publisher is None or not raw:
            return
        try:
            sample = contracts.decode(contracts.PollRequest, json.loads(raw)).host
            if sample is not None:
                publisher.record(instance, sample)
        except (TypeError, ValueError, KeyError):
            pass

    @router.post(contracts.AGENT_POLL)
    async def poll(instance: str, request: Request, wait: float = 20.0, token: str | None = token_header):
        agent_auth(instance, token)
        record_host(instance, await request.body())
        command = await cp.queue.poll_async(instance, min(max(wait, 0.0), 30.0))
        return contracts.encode(contracts.PollResponse(command=command))

    @router.post(contracts.AGENT_HEARTBEAT)
    def heartbeat(instance: str, command_id: str, token: str | None = token_header):
        agent_auth(instance, token)
        cp.queue.heartbeat(instance, command_id)
        return {"ok": True}

    @router.post(contracts.AGENT_RESULT)
    async def command_result(instance: str, command_id: str, request: Request, token: str | None = token_header):
        agent_auth(instance, token)
        result = await body(request, contracts.CommandResult)
        if result.command_id != command_id:
            raise HTTPException(422, "command_id in the body differs from the URL")
        accepted = cp.queue.report(instance, result)
        return Response(status_code=200 if accepted else 200,
                        content='{"ok": true, "repeat": %s}' % ("false" if accepted else "true"),
                        media_type="application/json")

    return router
