"""Settings, read once from the environment so every process of one installation agrees."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping


@dataclass(frozen=True)
class Settings:
    home: Path
    port: int
    account_id: str
    region: str
    # object store: the embedded SeaweedFS unless s3_endpoint points elsewhere
    s3_endpoint: str | None
    s3_port: int
    s3_access_key: str
    s3_secret_key: str
    instance_count: int
    artifact_bucket: str
    # running inside a container (docker-compose): where to listen and how containers reach us
    bind: str | None = None
    advertise_url: str | None = None
    s3_advertise_url: str | None = None
    # lets agents that carry it register instances the control plane did not launch
    registration_token: str | None = None
    # CloudWatch: 60 means one emulated minute passes in one real second (alarm periods, bake times)
    time_scale: float = 1.0
    # requests per second per instance that the built-in traffic generator sends to the fleet's apps
    traffic_rate: float = 5.0
    # emulated seconds a deployment to a group with alarms keeps watching them after its last instance
    deploy_bake_seconds: float = 300.0
    # seconds between two checks of the objects of S3 source actions that poll (0: never poll)
    s3_poll_seconds: float = 2.0

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "state.sqlite3"

    @property
    def repos_dir(self) -> Path:
        return self.data_dir / "repos"

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "store"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def embedded_store(self) -> bool:
        return not self.s3_endpoint

    @property
    def control_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def store_url(self) -> str:
        return self.s3_endpoint or f"http://127.0.0.1:{self.s3_port}"


def _installation_secret(home: Path) -> str:
    """The embedded store listens beyond loopback (containers reach it), so its key is random per
    installation rather than a well-known default; it is kept in the data directory."""
    path = home / "store-secret"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        import secrets  # once per installation; every CLI start would pay for its import

        home.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_urlsafe(24)
        path.write_text(secret)
        path.chmod(0o600)
        return secret


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Settings from `env` (default: this process's environment), e.g. for a server about to be spawned."""
    env = os.environ if env is None else env
    home = Path(env.get("PIPELOCAL_HOME") or Path.home() / ".pipelocal").expanduser().resolve()
    return Settings(
        home=home,
        port=int(env.get("PIPELOCAL_PORT", "4750")),
        account_id=env.get("PIPELOCAL_ACCOUNT_ID", "000000000000"),
        region=env.get("PIPELOCAL_REGION", env.get("AWS_DEFAULT_REGION", "us-east-1")),
        s3_endpoint=env.get("PIPELOCAL_S3_ENDPOINT") or None,
        s3_port=int(env.get("PIPELOCAL_S3_PORT", "4751")),
        s3_access_key=env.get("PIPELOCAL_S3_ACCESS_KEY", "pipelocal"),
        s3_secret_key=env.get("PIPELOCAL_S3_SECRET_KEY") or _installation_secret(home),
        instance_count=int(env.get("PIPELOCAL_INSTANCES", "2")),
        artifact_bucket=env.get("PIPELOCAL_ARTIFACT_BUCKET", "codepipeline-artifacts-pipelocal"),
        bind=env.get("PIPELOCAL_BIND") or None,
        advertise_url=(env.get("PIPELOCAL_ADVERTISE_URL") or "").rstrip("/") or None,
        s3_advertise_url=(env.get("PIPELOCAL_S3_ADVERTISE_URL") or "").rstrip("/") or None,
        registration_token=env.get("PIPELOCAL_REGISTRATION_TOKEN") or None,
        time_scale=_number(env, "PIPELOCAL_TIME_SCALE", 1.0),
        traffic_rate=_number(env, "PIPELOCAL_TRAFFIC_RATE", 5.0),
        deploy_bake_seconds=_number(env, "PIPELOCAL_DEPLOY_BAKE_SECONDS", 300.0),
        s3_poll_seconds=_number(env, "PIPELOCAL_S3_POLL_SECONDS", 2.0),
    )


def _number(env, name: str, default: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r}: expected a number") from None
