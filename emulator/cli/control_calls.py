"""Calls a command makes to the running control plane: a refusal is printed as one line and ends
the command with exit status 1, instead of a traceback."""

from __future__ import annotations

import typer
from rich.console import Console

from emulator.cli.client import Client, ControlPlaneError
from emulator.config import load_settings

_console = Console(highlight=False, soft_wrap=True)


def control_client() -> Client:
    return Client(load_settings().control_url)


def call(fn, *args):
    try:
        return fn(*args)
    except ControlPlaneError as exc:
        _console.print(f"[red]pipelocal:[/red] {exc}")
        raise typer.Exit(1) from None
