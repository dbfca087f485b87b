"""One long-lived shell for every command of a build (buildspec 0.2: `cd` and `export` carry over).

Each command is written to a file and sourced with stdin from /dev/null, so it runs in the
shell itself. After it, the shell snapshots `export -p` and `pwd` and prints a marker carrying
the exit status; the marker also tells us that all output before it has been read.

A command that ends the shell (`exit 3`, `set -e` then a failure) fails with the shell's exit
status, and a new shell starts from the last snapshot: exported variables and the working
directory survive, unexported variables and functions do not.

run-as: the command runs in a child shell under `runuser -u <user>` that starts from the same
snapshot and writes its own back, so exports and `cd` still carry over; HOME, USER and LOGNAME
are the run-as user's inside that child only. Needs the runner to be root; unexported variables
and functions of the main shell are not visible to run-as commands.
"""

from __future__ import annotations

import codecs
import os
import re
import select
import shlex
import subprocess
from collections.abc import Callable

_POLL_SECONDS = 0.2


class ShellSession:
    def __init__(self, shell: str, cwd: str, env: dict[str, str], on_output: Callable[[str], None]):
        self.shell = shell
        self.cwd = cwd
        self.env = dict(env)
        self.on_output = on_output
        self._state = _state_dir()
        os.chmod(self._state, 0o1777)  # run-as users write their snapshots here
        self._env_file = os.path.join(self._state, "env")
        self._cwd_file = os.path.join(self._state, "cwd")
        self._nonce = os.urandom(8).hex()  # not `secrets`: its hashlib import slows every build's start
        self._marker = re.compile(rb"\x1e" + self._nonce.encode() + rb":(-?\d+)\x1e")
        self._count = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._start(restore=False)

    # ------------------------------------------------------------ public

    def run(self, command: str, run_as: str | None = None) -> int:
        """Runs one buildspec command; its output goes to on_output; returns its exit status."""
        cmd_file = self._write(command)
        if run_as and run_as != _current_user():
            return self._execute(self._run_as_line(cmd_file, run_as), self.on_output)
        return self._execute(f". {_q(cmd_file)} </dev/null", self.on_output)

    def snapshot_paths(self) -> tuple[str, str]:
        """(exported variables as `export -p` wrote them, working directory) after the last command."""
        return self._env_file, self._cwd_file

    def set_env(self, name: str, value: str) -> None:
        self._execute(f"export {name}={_q(value)}", None)

    def read_variables(self, names: list[str]) -> dict[str, str]:
        """Current values of the named variables that are set; names must be identifiers."""
        names = [n for n in names if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", n)]
        if not names:
            return {}
        script = "; ".join(f'[ -n "${{{n}+x}}" ] && printf "%s\\035%s\\036" {n} "${n}"' for n in names)
        out: list[str] = []
        self._execute(f"{{ {script}; }} </dev/null; true", out.append)
        values = {}
        for record in "".join(out).split("\x1e"):
            name, sep, value = record.partition("\x1d")
            if sep:
                values[name] = value
        return values

    def close(self) -> None:
        if self._proc and self._proc.poll() is None:
            try:
                self._proc.stdin.close()  # type: ignore[union-attr]
                self._proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self._proc.kill()
        _remove_state_dir(self._state)

    # ------------------------------------------------------------ internals

    def _start(self, restore: bool) -> None:
        args = [self.shell] + (["--noprofile", "--norc"] if os.path.basename(self.shell) == "bash" else [])
        self._proc = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=self.cwd,
            # a restarted shell takes its whole environment from the snapshot
            env={} if restore else self.env,
            start_new_session=True,
        )
        if restore:
            self._execute(self._restore_snapshot(), None, snapshot=False)

    def _restore_snapshot(self) -> str:
        return (
            f"[ -f {_q(self._env_file)} ] && . {_q(self._env_file)} 2>/dev/null; "
            f"[ -f {_q(self._cwd_file)} ] && read -r __pl_cwd <{_q(self._cwd_file)} && cd \"$__pl_cwd\"; unset __pl_cwd"
        )

    def _run_as_line(self, cmd_file: str, user: str) -> str:
        child = os.path.join(self._state, f"run-as-{self._count}.sh")
        with open(child, "w") as f:
            f.write(
                "__pl_h=$HOME; __pl_u=$USER; __pl_l=$LOGNAME\n"
                + self._restore_snapshot() + "\n"
                + 'export HOME="$__pl_h" USER="$__pl_u" LOGNAME="$__pl_l"; unset __pl_h __pl_u __pl_l\n'
                + f". {_q(cmd_file)} </dev/null\n__pl_rc=$?\n"
                + f"export -p >{_q(self._env_file)}; pwd >{_q(self._cwd_file)}\nexit $__pl_rc\n"
            )
        os.chmod(child, 0o644)
        os.chmod(cmd_file, 0o644)
        save = "__pl_h=${HOME-}; __pl_u=${USER-__pl_unset}; __pl_l=${LOGNAME-__pl_unset}"
        back = (
            'HOME=$__pl_h; if [ "$__pl_u" = __pl_unset ]; then unset USER; else USER=$__pl_u; fi; '
            'if [ "$__pl_l" = __pl_unset ]; then unset LOGNAME; else LOGNAME=$__pl_l; fi; unset __pl_h __pl_u __pl_l'
        )
        return (
            f"export -p >{_q(self._env_file)}; pwd >{_q(self._cwd_file)}; chmod 666 {_q(self._env_file)} {_q(self._cwd_file)}; "
            f"{save}; runuser -u {_q(user)} -- {_q(self.shell)} {_q(child)} </dev/null; __pl_rc=$?; "
            f"{self._restore_snapshot()}; {back}; (exit $__pl_rc)"
        )

    def _write(self, command: str) -> str:
        self._count += 1
        path = os.path.join(self._state, f"command-{self._count}.sh")
        with open(path, "w") as f:
            f.write(command + "\n")
        return path

    def _execute(self, line: str, sink: Callable[[str], None] | None, snapshot: bool = True) -> int:
        """Feeds one line to the shell and relays its output until the marker (or the shell dies)."""
        tail = f"export -p >{_q(self._env_file)}; pwd >{_q(self._cwd_file)}; " if snapshot else ""
        script = f"{line}\n__pl_rc=$?; {tail}printf '\\036%s:%d\\036' {self._nonce} \"$__pl_rc\"; unset __pl_rc\n"
        proc = self._proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(script.encode())
            proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the shell is gone; reported below through its exit status
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        fd = proc.stdout.fileno()
        pending = b""
        while True:
            ready, _, _ = select.select([fd], [], [], _POLL_SECONDS)
            data = os.read(fd, 65536) if ready else b""
            if ready and not data or not ready and proc.poll() is not None:
                rc = self._finish_dead_shell(proc, fd, pending, decoder, sink)
                return rc
            pending += data
            match = self._marker.search(pending)
            if match:
                _emit(sink, decoder.decode(pending[: match.start()], final=True))
                return int(match.group(1))
            keep = pending.rfind(b"\x1e")  # a marker may be arriving in pieces
            cut = keep if keep != -1 else len(pending)
            _emit(sink, decoder.decode(pending[:cut]))
            pending = pending[cut:]

    def _finish_dead_shell(self, proc, fd, pending, decoder, sink) -> int:
        while select.select([fd], [], [], 0)[0]:
            data = os.read(fd, 65536)
            if not data:
                break
            pending += data
        _emit(sink, decoder.decode(pending, final=True))
        rc = proc.wait()
        for pipe in (proc.stdin, proc.stdout):
            try:
                pipe.close()
            except OSError:
                pass
        self._start(restore=os.path.exists(self._env_file))
        return 128 - rc if rc < 0 else rc  # killed by a signal: report it the way a shell would


def _emit(sink: Callable[[str], None] | None, text: str) -> None:
    if sink and text:
        sink(text)


def _state_dir() -> str:
    """A new private directory for the shell's snapshots (not `tempfile`: with what it imports it
    would add milliseconds to every build's start)."""
    base = os.environ.get("TMPDIR") or "/tmp"
    while True:
        path = os.path.join(base, f"pipelocal-shell-{os.urandom(6).hex()}")
        try:
            os.mkdir(path, 0o700)
            return path
        except FileExistsError:
            continue


def _remove_state_dir(path: str) -> None:
    """The snapshot directory holds files only."""
    try:
        for name in os.listdir(path):
            os.unlink(os.path.join(path, name))
        os.rmdir(path)
    except OSError:
        pass


def _current_user() -> str:
    import getpass  # only for run-as

    return getpass.getuser()


def _q(text: str) -> str:
    return shlex.quote(text)
