"""The FastAPI application: routes plus one error mapping, so a user's mistake never kills it."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from emulator.api.aws_protocol import AwsProtocol, aws_router
from emulator.api.cloudwatch_routes import cloudwatch_router
from emulator.api.codebuild_routes import codebuild_router
from emulator.api.codedeploy_routes import codedeploy_router
from emulator.api.console_routes import console_router
from emulator.api.git_http import git_router
from emulator.api.internal_routes import internal_router
from emulator.api.management_routes import management_router
from emulator.api.providers import providers_for
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
    app.include_router(git_router(cp.repos, cp.on_push))
    app.include_router(aws_router(AwsProtocol(providers_for(cp))))
    app.include_router(console_router(cp))

    def error(status: int, kind: str, message: str) -> JSONResponse:
        return JSONResponse({"error": kind, "message": message}, status_code=status)

    @app.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound):
        return error(404, f"{exc.kind}NotFoundException", str(exc))

    @app.exception_handler(Conflict)
    async def conflict(_: Request, exc: Conflict):
        return error(409, "ConflictException", str(exc))

    @app.exception_handler(TransitionRefused)
    async def refused(_: Request, exc: TransitionRefused):
        return error(409, "InvalidStateException", str(exc))

    @app.exception_handler(SpecError)
    async def spec(_: Request, exc: SpecError):
        return error(400, type(exc).__name__, str(exc))

    @app.exception_handler(ValueError)
    async def value(_: Request, exc: ValueError):
        return error(400, "ValidationException", str(exc))

    @app.exception_handler(ImageMissing)
    async def image_missing(_: Request, exc: ImageMissing):
        return error(503, "ImageMissing", str(exc))

    @app.exception_handler(RuntimeUnavailable)
    async def engine_down(_: Request, exc: RuntimeUnavailable):
        return error(503, "ContainerEngineUnavailable", str(exc))

    @app.exception_handler(KeyError)
    async def key(_: Request, exc: KeyError):
        return error(400, "ValidationException", f"a required field is missing: {exc}")

    return app
