"""`pipelocal build` of a trivial buildspec against a raw `docker run` of the same commands in the
same image, alternated in one run, so both see the same machine load.

Usage: .venv/bin/python benchmarks/local_build.py [--rounds N] [--in-process]
`pipelocal build` is timed as the user runs it: the installed `pipelocal` command, a new process
each time, with Python's bytecode cache on as in a normal installation (PYTHONDONTWRITEBYTECODE is
removed from its environment; with it set, every run would compile pipelocal's modules again).
It is timed twice: handed to a running control plane (started here on its own port and home, with
no instances), which starts each build in a container it made ahead after the build before; and
with --standalone, as without a control plane (the command loads the Docker SDK and starts the
container itself). With --in-process the CLI's start-up is left out and only the build
engine is timed. Both sides run the same three commands in the same image (the raw side and
standalone builds on Docker's default network, handed-over builds on pipelocal's own);
the raw side is `docker run --rm`, which also waits for the container's removal. The goal is at
most 1.3x the raw run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

IMAGE = "pipelocal/build:1"
COMMANDS = ["echo hello", "mkdir -p dist && echo built > dist/out.txt", "ls dist"]
BUILDSPEC = "version: 0.2\nphases:\n  build:\n    commands:\n" + "".join(f"      - {c}\n" for c in COMMANDS)
console = Console()
# between two runs: the engine finishes removing the last container, and the control plane makes
# the container for the next handed-over build, before the next run is timed
PAUSE = 1.0


def raw_run() -> float:
    start = time.perf_counter()
    subprocess.run(["docker", "run", "--rm", "-w", "/src", IMAGE, "bash", "-c", " && ".join(COMMANDS)],
                   check=True, capture_output=True)
    return time.perf_counter() - start


def cli_run(src: Path, home: Path, port: int, *extra: str) -> float:
    command = Path(sys.executable).with_name("pipelocal")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(PIPELOCAL_HOME=str(home), PIPELOCAL_PORT=str(port))
    start = time.perf_counter()
    done = subprocess.run([str(command), "build", "--source", str(src), *extra], capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"pipelocal build failed:\n{done.stdout}\n{done.stderr}")
    return elapsed


def in_process_run(src: Path) -> float:
    from emulator.runtime.docker_engine import CLI_API_VERSION, DockerEngine
    from emulator.services.codebuild import local_build

    start = time.perf_counter()
    options = local_build.LocalBuildOptions(source_dir=src)
    spec, _ = local_build.prepare(options)
    result = local_build.run(options, spec, lambda t: None, lambda r: None, DockerEngine(api_version=CLI_API_VERSION))
    if result.status != "SUCCEEDED":
        raise SystemExit(f"build {result.status}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--in-process", action="store_true")
    parser.add_argument("--port", type=int, default=4980, help="for the control plane started here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src, home = Path(tmp) / "src", Path(tmp) / "home"
        src.mkdir()
        (src / "buildspec.yml").write_text(BUILDSPEC)
        raw: list[float] = []
        timed: dict[str, list[float]] = {}
        if args.in_process:
            runs = {"pipelocal build (engine only)": lambda: in_process_run(src)}
            server = None
        else:
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            from deploy_fleet import start_control_plane

            server, _, _ = start_control_plane(args.port, home)
            runs = {"pipelocal build (control plane running)": lambda: cli_run(src, home, args.port),
                    "pipelocal build --standalone": lambda: cli_run(src, home, args.port, "--standalone")}
        try:
            raw_run(), [run() for run in runs.values()]  # warm-up: page cache, image layers, imports
            for _ in range(args.rounds):
                for label, run in runs.items():
                    raw.append(raw_run())
                    time.sleep(PAUSE)
                    timed.setdefault(label, []).append(run())
                    time.sleep(PAUSE)
        finally:
            if server is not None:
                server.terminate()
                server.wait(60)
    table = Table(title=f"trivial buildspec, {args.rounds} alternated rounds, seconds")
    for column in ("run", "median", "min", "max", "ratio to raw"):
        table.add_column(column)
    base = statistics.median(raw)
    table.add_row(f"docker run --rm {IMAGE}", f"{base:.3f}", f"{min(raw):.3f}", f"{max(raw):.3f}", "1.00x")
    for label, values in timed.items():
        table.add_row(label, f"{statistics.median(values):.3f}", f"{min(values):.3f}", f"{max(values):.3f}",
                      f"{statistics.median(values) / base:.2f}x")
    console.print(table)
    for label, values in timed.items():
        console.print(f"{label}: median overhead {statistics.median(values) - base:.3f} s, "
                      f"ratio {statistics.median(values) / base:.2f}x (goal <= 1.30x)")


if __name__ == "__main__":
    main()
