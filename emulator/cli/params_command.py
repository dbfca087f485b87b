"""`pipelocal params` and `pipelocal secrets`: the Parameter Store and Secrets Manager stand-in,
whose values buildspec `env.parameter-store` and `env.secrets-manager` resolve against."""

from __future__ import annotations

import typer
from rich.console import Console

from emulator.config import load_settings

console = Console(highlight=False)
params_app = typer.Typer(help="SSM Parameter Store stand-in: values for buildspec env.parameter-store.",
                         no_args_is_help=True)
secrets_app = typer.Typer(help="Secrets Manager stand-in: values for buildspec env.secrets-manager.",
                          no_args_is_help=True)


def _client():
    from emulator.cli.client import Client

    return Client(load_settings().control_url)


def _call(fn):
    from emulator.cli.client import ControlPlaneError

    try:
        return fn()
    except ControlPlaneError as exc:
        console.print(f"[red]pipelocal:[/red] {exc}")
        raise typer.Exit(1)


@params_app.command("put")
def params_put(name: str, value: str,
               type: str = typer.Option("String", "--type", help="String, StringList or SecureString."),
               overwrite: bool = typer.Option(False, "--overwrite")) -> None:
    """Set a parameter (like `aws ssm put-parameter`)."""
    result = _call(lambda: _client().post("/parameters", {"name": name, "value": value, "type": type,
                                                          "overwrite": overwrite}))
    console.print(f"{name}: version {result['Version']}")


@params_app.command("get")
def params_get(name: str, decrypt: bool = typer.Option(False, "--with-decryption")) -> None:
    """Print a parameter's value."""
    print(_call(lambda: _client().get("/parameters/value", name=name, withDecryption=decrypt))["Value"])


@params_app.command("list")
def params_list() -> None:
    """Names, types and versions (never values)."""
    for p in _call(lambda: _client().get("/parameters"))["parameters"]:
        console.print(f"{p['Name']}  {p['Type']}  v{p['Version']}")


@secrets_app.command("create")
def secrets_create(name: str, value: str) -> None:
    """Create a secret (like `aws secretsmanager create-secret --secret-string`)."""
    result = _call(lambda: _client().post("/secrets", {"name": name, "secretString": value}))
    console.print(result["ARN"])


@secrets_app.command("put")
def secrets_put(secret_id: str, value: str) -> None:
    """A new AWSCURRENT version of a secret."""
    result = _call(lambda: _client().request("PUT", "/secrets/value", json={"secretId": secret_id, "secretString": value}))
    console.print(f"{result['Name']}: version {result['VersionId']}")


@secrets_app.command("get")
def secrets_get(secret_id: str, stage: str = typer.Option(None, "--version-stage")) -> None:
    """Print a secret's value."""
    print(_call(lambda: _client().get("/secrets/value", secretId=secret_id, **({"versionStage": stage} if stage else {})))["SecretString"])


@secrets_app.command("list")
def secrets_list() -> None:
    """Secret names and ARNs (never values)."""
    for s in _call(lambda: _client().get("/secrets"))["secrets"]:
        console.print(f"{s['Name']}  {s['ARN']}")
