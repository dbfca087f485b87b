"""The `pipelocal` command.

`pipelocal build` goes straight to its own command: loading every other command (the control
plane's HTTP client, the Docker SDK, rich) costs more than the whole overhead a trivial local
build is allowed over a plain `docker run`. Everything else goes to `emulator.cli.main`.
"""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:2] == ["build"]:
        from emulator.cli.build_command import run_build_alone

        run_build_alone(sys.argv[2:])
        return
    from emulator.cli.main import main as run_all

    run_all()


if __name__ == "__main__":
    main()
