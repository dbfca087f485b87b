"""`pipelocal build` of a trivial buildspec against a raw `docker run` of the same commands in the
same image, alternated in one run, so both see the same machine load.

Usage: .venv/bin/python benchmarks/local_build.py [--rounds N] [--in-process]
`pipelocal build` is timed as the user runs it: the installed `pipelocal` command, a new process
each time, with Python's bytecode cache on as in a normal installation (PYTHONDONTWRITEBYTECODE is
removed from its environment; with it set, every run would compile pipelocal's modules again).
With --in-process the CLI's start-up is left out and only the build engine is timed. Both sides
run the same three commands in the same image on the default network; the raw side is
`docker run --rm`, which also waits for the container's removal. The goal is at most 1.3x the raw run.
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


def raw_run() -> float:
    start = time.perf_counter()
    subprocess.run(["docker", "run", "--rm", "-w", "/src", IMAGE, "bash", "-c", " && ".join(COMMANDS)],
                   check=True, capture_output=True)
    return time.perf_counter() - start


def cli_run(src: Path) -> float:
    command = Path(sys.executable).with_name("pipelocal")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    start = time.perf_counter()
    done = subprocess.run([str(command), "build", "--source", str(src)], capture_output=True, text=True, env=env)
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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp)
        (src / "buildspec.yml").write_text(BUILDSPEC)
        run = in_process_run if args.in_process else cli_run
        raw_run(), run(src)  # warm-up: page cache, image layers, imports
        raw, ours = [], []
        for _ in range(args.rounds):
            raw.append(raw_run())
            ours.append(run(src))
    label = "pipelocal build (engine only)" if args.in_process else "pipelocal build (CLI)"
    table = Table(title=f"trivial buildspec, {args.rounds} alternated rounds, seconds")
    for column in ("run", "median", "min", "max"):
        table.add_column(column)
    for name, values in ((f"docker run --rm {IMAGE}", raw), (label, ours)):
        table.add_row(name, f"{statistics.median(values):.3f}", f"{min(values):.3f}", f"{max(values):.3f}")
    console.print(table)
    overhead = statistics.median(ours) - statistics.median(raw)
    ratio = statistics.median(ours) / statistics.median(raw)
    console.print(f"median overhead {overhead:.3f} s, ratio {ratio:.2f}x (goal <= 1.30x)")


if __name__ == "__main__":
    main()
