"""The FastAPI application: routes plus one error mapping, so a user's mistake never kills it."""

from __future__ import annotations

from typing import Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from emulator.api.aws_protocol import AwsProtocol, aws_router
from emulator.api.cloudwatch_routes import cloudwatch_router
from emulator.api.codebuild_routes import codebuild_router
from emulator.api.codedeploy_routes import codedeploy_router
from emulator.api.console_routes import console_router
from emulator.api.elb_routes import elb_router
from emulator.api.git_http import git_router
from emulator.api.internal_routes import internal_router
from emulator.api.management_routes import management_router
from emulator.api.providers import providers_for, query_providers_for
from emulator.api.query_protocol import QueryProtocol
from emulator.control_plane import ControlPlane
from emulator.domain.errors import Conflict, NotFound, SpecError
from emulator.domain.statuses import TransitionRefused
from emulator.runtime.container_runtime import ImageMissing, RuntimeUnavailable


def create_app(cp: ControlPlane) -> FastAPI:
    app = FastAPI(title="pipelocal control plane", version="0.1.0")
    app.state.control_plane = cp
    app.include_router(internal_router(cp))
    app.include_router(management_router(cp))
    app.include_router(codedeploy_router(cp))
    app.include_router(codebuild_router(cp))
    app.include_router(cloudwatch_router(cp))
    app.include_router(elb_router(cp))
    app.include_router(git_router(cp.repos, cp.on_push, cp.on_tags))
    app.include_router(aws_router(AwsProtocol(providers_for(cp)), QueryProtocol(query_providers_for(cp))))
    app.include_router(console_router(cp))

    # exception -> (HTTP status, error name, message); the management API never answers a 500 for these
    answers: dict[type[Exception], Callable[[Exception], tuple[int, str, str]]] = {
        NotFound: lambda exc: (404, f"{exc.kind}NotFoundException", str(exc)),
        Conflict: lambda exc: (409, "ConflictException", str(exc)),
        TransitionRefused: lambda exc: (409, "InvalidStateException", str(exc)),
        SpecError: lambda exc: (400, type(exc).__name__, str(exc)),
        ValueError: lambda exc: (400, "ValidationException", str(exc)),
        ImageMissing: lambda exc: (503, "ImageMissing", str(exc)),
        RuntimeUnavailable: lambda exc: (503, "ContainerEngineUnavailable", str(exc)),
        KeyError: lambda exc: (400, "ValidationException", f"a required field is missing: {exc}"),
    }

    def answer(answer_for: Callable[[Exception], tuple[int, str, str]]):
        async def handler(_: Request, exc: Exception) -> JSONResponse:
            status, kind, message = answer_for(exc)
            return JSONResponse({"error": kind, "message": message}, status_code=status)
        return handler

    for exc_type, answer_for in answers.items():
        app.add_exception_handler(exc_type, answer(answer_for))

    return app
