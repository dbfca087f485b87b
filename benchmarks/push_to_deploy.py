"""Time from `git push` to "deployed on every instance", split per stage, against a raw `docker run`.

Usage: .venv/bin/python benchmarks/push_to_deploy.py [--rounds N]
Starts the control plane if needed (PIPELOCAL_HOME as usual) and prints a table. User time is the
time inside user commands: the build phases INSTALL..POST_BUILD and the hook scripts of the
deployment; the rest is pipelocal's own overhead.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from emulator.cli import demo, lifecycle
from emulator.config import load_settings
from emulator.store.object_store import ObjectStore

USER_PHASES = {"INSTALL", "PRE_BUILD", "BUILD", "POST_BUILD"}
console = Console()


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def one_round(client, work: Path, n: int) -> dict:
    index = work / "src" / "index.html"
    index.write_text(index.read_text().replace("</body>", f"<!-- bench {time.time()} -->\n</body>", 1))
    git(work, "commit", "-qam", f"benchmark round {n}")
    commit = git(work, "rev-parse", "HEAD")
    t0 = time.time()
    git(work, "push", "-q", "origin", "HEAD:main")
    execution_id = demo._wait_for_execution(client, commit)
    while True:
        execution = client.get(f"/executions/{execution_id}")
        if execution["status"] not in ("InProgress", "Stopping"):
            break
        time.sleep(0.2)
    total = execution["endTime"] - t0
    row = {"total": total, "status": execution["status"]}
    for stage in execution["stages"]:
        row[stage["stageName"]] = stage["endTime"] - stage["createdAt"]
    user = 0.0
    for action in execution["actions"]:
        ext = action.get("externalExecutionId", "")
        if action["stageName"] == "Build":
            build = client.get(f"/builds/{ext}")
            user += sum(p.get("endTime", 0) - p.get("startTime", 0) for p in build["phases"]
                        if p["phaseType"] in USER_PHASES and p.get("endTime"))
        if action["stageName"] == "Deploy":
            deployment = client.get(f"/deployments/{ext}")
            # instances deploy one at a time (OneAtATime), so hook times add up
            for target in deployment["targets"]:
                for event in target["lifecycleEvents"]:
                    if event["lifecycleEventName"] in ("BeforeInstall", "AfterInstall", "ApplicationStop") \
                            and event.get("endTime") and event.get("startTime"):
                        user += event["endTime"] - event["startTime"]
    row["user"] = user
    row["overhead"] = total - user
    return row


def raw_docker_run(settings, app_dir: Path) -> float:
    """The same build commands in the same image, with nothing around them."""
    script = ("cd /src && npm install && npm test && npm run build && "
              "aws s3 sync ./dist s3://my-app-build-artifacts/latest/")
    gateway = subprocess.run(["docker", "network", "inspect", "pipelocal", "-f",
                              "{{(index .IPAM.Config 0).Gateway}}"], capture_output=True, text=True,
                             check=True).stdout.strip()
    t0 = time.time()
    subprocess.run(["docker", "run", "--rm", "--network", "pipelocal", "-v", f"{app_dir}:/src",
                    "-e", f"AWS_ENDPOINT_URL_S3=http://{gateway}:{settings.s3_port}",
                    "-e", f"AWS_ACCESS_KEY_ID={settings.s3_access_key}",
                    "-e", f"AWS_SECRET_ACCESS_KEY={settings.s3_secret_key}",
                    "pipelocal/build:1", "bash", "-c", script], check=True, capture_output=True)
    return time.time() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    settings = load_settings()
    client = lifecycle.start_server(settings, console)
    lifecycle.ensure_fleet(client, settings, console)
    store = ObjectStore(settings.store_url, settings.s3_access_key, settings.s3_secret_key, settings.region)
    demo.provision(client, settings, store)
    work = Path(tempfile.mkdtemp(prefix="pipelocal-bench-"))
    raw_dir = Path(tempfile.mkdtemp(prefix="pipelocal-raw-"))
    try:
        git(work.parent, "clone", "-q", f"{settings.control_url}/v1/repos/{demo.REPOSITORY}", work.name)
        git(work, "config", "user.email", "bench@pipelocal.local")
        git(work, "config", "user.name", "bench")
        if not (work / "buildspec.yml").exists():
            shutil.copytree(demo.DEMO_DIR / "app", work, dirs_exist_ok=True)
            git(work, "add", "-A")
        rows, raws = [], []
        for n in range(1, args.rounds + 1):
            console.print(f"round {n}: push -> deployed")
            rows.append(one_round(client, work, n))
            shutil.copytree(demo.DEMO_DIR / "app", raw_dir, dirs_exist_ok=True)
            console.print(f"round {n}: raw docker run")
            raws.append(raw_docker_run(settings, raw_dir))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        subprocess.run(["rm", "-rf", str(raw_dir)])

    table = Table(title=f"git push -> deployed on {settings.instance_count} instances ({args.rounds} rounds)")
    table.add_column("measure")
    table.add_column("median s", justify="right")
    table.add_column("min s", justify="right")
    table.add_column("max s", justify="right")
    for key in ("total", "Source", "Build", "Deploy", "user", "overhead"):
        values = [r[key] for r in rows if key in r]
        table.add_row(key, f"{statistics.median(values):.2f}", f"{min(values):.2f}", f"{max(values):.2f}")
    table.add_row("raw docker run (build commands only)", f"{statistics.median(raws):.2f}", f"{min(raws):.2f}",
                  f"{max(raws):.2f}")
    console.print(table)
    console.print(f"statuses: {', '.join(r['status'] for r in rows)}")


if __name__ == "__main__":
    main()
