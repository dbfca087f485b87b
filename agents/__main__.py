"""`python3 -m agents`: the CodeDeploy agent of one emulated instance."""

from __future__ import annotations

import os
import signal
import sys

from emulator import contracts

from agents.command_loop import CommandLoop, instance_tags, log
from agents.control_client import ControlClient
from agents.deployment_root import DeploymentRoot


def main() -> int:
    required = (contracts.ENV_CONTROL_URL, contracts.ENV_INSTANCE_NAME, contracts.ENV_TOKEN)
    missing = [name for name in required if not os.environ.get(name)]
    if missing:
        print(f"agent: missing environment variables: {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        instance_tags(os.environ.get(contracts.ENV_INSTANCE_TAGS, ""))
    except ValueError as exc:
        print(f"agent: {exc}", file=sys.stderr)
        return 2
    client = ControlClient(
        os.environ[contracts.ENV_CONTROL_URL],
        os.environ[contracts.ENV_INSTANCE_NAME],
        os.environ[contracts.ENV_TOKEN],
    )
    root = DeploymentRoot.from_environment()
    os.makedirs(root.path, exist_ok=True)
    signal.signal(signal.SIGTERM, _exit_on_term)  # `docker stop` must not wait out a long poll
    log(f"agent starting for {client.instance}, control plane {client.base_url}, deployment root {root.path}")
    try:
        CommandLoop(client, root).run()
    except KeyboardInterrupt:
        pass
    return 0


def _exit_on_term(signum, frame) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    sys.exit(main())
