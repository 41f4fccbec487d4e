#!/usr/bin/env python3
"""Runs the commands shown in README.md and docs/*.md, so the docs cannot drift from the code.

Usage: tests/docs_commands.py --bin-dir TARGET/debug [--python VENV/bin/python] [--list] [--keep]
       [FILE.md ...]       (default: README.md and docs/*.md)
tests/run.sh runs it after `cargo test`, which has built the binaries it uses.

Which blocks run. Every fenced block of README.md and docs/*.md whose info string is
`sh`, `bash`, `shell`, `zsh` (a script), `console` (a transcript), or `python`, and every
`text` or unlabelled block whose first line starts with `$ ` (a transcript). Other blocks
(yaml, json, ts, csharp, cpp; text blocks of output only, like a diagnostic) are examples, not
commands, and are left alone. Each block in scope is run, unless the line right above its
fence says why not:

    <!-- not run: REASON -->     (the reason is required)

Other markers, also on the lines right above the fence:

    <!-- setup: COMMAND -->      run COMMAND first (must exit 0), e.g. to make the typo an
                                 example shows; a block with a setup runs in a scratch copy of
                                 its own, so what the setup changes is seen by that block only
    <!-- exit: N -->             (transcripts) the status each command must exit with

Any other comment right above a block in scope is an error, as is a block with no command.

Expected output. In a script, `# ` comment lines after a command are its expected output and
`# exit: N` its expected status (default 0); comments before the first command are prose, and a
comment at the end of a command line is the shell's. In a transcript, `$ COMMAND` lines are
commands and the lines below each are its expected output. Each expected line must match a whole
line of what the command wrote (stdout and stderr together, as written; trailing blanks and
carriage returns ignored), in order; other lines may come between. `…` in an expected line
(with the blanks around it) matches any text, across lines too, so figures and long bodies stay
readable: `# sent 10000  accepted …`. Python blocks must exit 0. Here-documents are not supported.

How blocks run. Per document, in a scratch copy of the checkout (its tracked and untracked,
not ignored, files) made a git repository whose `origin/main` is that copy, so
`contractc diff --base origin/main` works. The document's blocks run in order in one bash
session (variables carry over, as in a reader's terminal), each command bounded by --timeout.
A command that starts `serve` (last in its `&&` chain, not piped or redirected) keeps running
in the background until the document ends; the next command waits until its /healthz answers,
and its expected lines are checked against its log so far. Given `# exit: N`, it runs in the
foreground instead (e.g. a second `serve` on a busy port, expected to fail).

The network: everything runs in a network namespace of its own (unshare), which has only a
loopback, so the docs' 127.0.0.1:8080 is free and used as written, and nothing beyond
127.0.0.1 can be reached. Where no namespace can be made, 127.0.0.1:8080 on the host is used if
it is free, and the run fails saying so otherwise.

Deliberate differences from running the docs as written:
- `cargo run [--release] -p CRATE --` runs the debug binary CRATE from --bin-dir, and --bin-dir
  comes first on PATH, so `contractc`, `contract-runtime` and `contract-deploy` name those too.
  A release build would add about 7 minutes to CI; the code is the same. A command still
  calling cargo after this mapping is an error (it would wait on the lock of `cargo test`).
- `/abs/path/` (README's placeholder) is the scratch copy, and `/tmp/` the scratch's tmp/.
- python blocks run with --python (the test venv, which has pyiceberg).
- the proxy variables (http_proxy, ...) are unset: requests go to 127.0.0.1 directly.

The closing line is `docs commands: N passed, M failed` (a command, a setup or a marker
problem counts once); the exit status is 1 when anything failed.
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import os
import re
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT_LANGUAGES = {"sh", "bash", "shell", "zsh"}
TRANSCRIPT_LANGUAGES = {"console"}
PYTHON_LANGUAGES = {"python", "python3", "py"}
DOCS_ADDRESS = ("127.0.0.1", 8080)
IN_NAMESPACE = "DOCS_COMMANDS_IN_NETNS"
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy")
HEALTH_WAIT_S = 60
STOP_WAIT_S = 20

FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([^\s`]*)")
MARKER = re.compile(r"^\s*<!--\s*(.*?)\s*-->\s*$")
CARGO_RUN = re.compile(
    r"\bcargo\s+run((?:\s+(?:--release|--locked|-q|--quiet|(?:-p|--package|--bin)\s+[\w-]+))*)"
    r"(?:\s+--(?=\s|$))?"
)
SERVE = re.compile(r"(?:^|&&)\s*(?:\S+=\S+\s+)*contract-runtime\s+serve\b([^|&;<>]*)$")


@dataclasses.dataclass
class Command:
    text: str
    line: int
    expect: list[str] = dataclasses.field(default_factory=list)
    exit: int = 0
    python: bool = False


@dataclasses.dataclass
class Block:
    doc: Path
    line: int
    language: str
    body: list[str]
    markers: list[str]
    not_run: str | None = None
    setup: list[str] = dataclasses.field(default_factory=list)
    commands: list[Command] = dataclasses.field(default_factory=list)
    problems: list[str] = dataclasses.field(default_factory=list)

    def where(self, line: int | None = None) -> str:
        return f"{os.path.relpath(self.doc, ROOT)}:{line or self.line}"


# ---------------------------------------------------------------------------------------------
# Reading the docs


def fenced_blocks(doc: Path) -> list[Block]:
    """Every fenced block of `doc`, with the marker comments right above its fence."""
    lines = doc.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        fence = opening.group(2)
        markers, j = [], i - 1
        while j >= 0 and MARKER.match(lines[j]):
            markers.insert(0, MARKER.match(lines[j]).group(1))
            j -= 1
        end = i + 1
        while end < len(lines) and not lines[end].strip().startswith(fence):
            end += 1
        language = opening.group(3).lower()
        blocks.append(Block(doc, i + 1, language, lines[i + 1 : end], markers))
        i = end + 1
    return blocks


def in_scope(block: Block) -> bool:
    if block.language in SCRIPT_LANGUAGES | TRANSCRIPT_LANGUAGES | PYTHON_LANGUAGES:
        return True
    first = next((line for line in block.body if line.strip()), "")
    return block.language in ("", "text") and first.startswith("$ ")


def read_markers(block: Block) -> int | None:
    """Fills not_run and setup from the markers; returns a transcript's `exit: N`, if any."""
    transcript_exit = None
    for marker in block.markers:
        key, _, value = marker.partition(":")
        key, value = key.strip(), value.strip()
        if key == "not run":
            if not value:
                block.problems.append("`<!-- not run: -->` without a reason")
            block.not_run = value
        elif key == "setup" and value:
            block.setup.append(value)
        elif key == "exit" and value.isdigit():
            transcript_exit = int(value)
        else:
            block.problems.append(f"unknown marker `<!-- {marker} -->` above a block that runs")
    return transcript_exit


def parse_script(block: Block) -> None:
    current, continued = None, False
    for offset, line in enumerate(block.body, start=block.line + 1):
        stripped = line.strip()
        if continued:
            current.text += "\n" + line
            continued = stripped.endswith("\\")
            continue
        if not stripped:
            continue
        if stripped.startswith("#"):
            if current is None:
                continue  # prose before the first command
            expected = stripped[1:].removeprefix(" ")
            status = re.fullmatch(r"exit:\s*(\d+)", expected.strip())
            if status:
                current.exit = int(status.group(1))
            else:
                current.expect.append(expected)
            continue
        current = Command(line, offset)
        block.commands.append(current)
        continued = stripped.endswith("\\")


def parse_transcript(block: Block, status: int | None) -> None:
    current = None
    for offset, line in enumerate(block.body, start=block.line + 1):
        if line.startswith("$ "):
            current = Command(line[2:], offset, exit=status or 0)
            block.commands.append(current)
        elif current is not None and line.strip():
            current.expect.append(line)


def parse(block: Block) -> None:
    transcript_exit = read_markers(block)
    if block.not_run is not None:
        return
    if block.language in PYTHON_LANGUAGES:
        block.commands.append(Command("\n".join(block.body), block.line + 1, python=True))
    elif block.language in SCRIPT_LANGUAGES:
        parse_script(block)
    else:
        parse_transcript(block, transcript_exit)
    if not block.commands:
        block.problems.append("a block to run without any command")


# ---------------------------------------------------------------------------------------------
# Expected output


def expectation(line: str) -> re.Pattern:
    """One expected line as a regex: a whole output line, `…` (and the blanks around it)
    matching any text."""
    parts = [re.escape(part) for part in re.split(r"\s*…\s*", line.rstrip())]
    return re.compile(r"^" + r".*?".join(parts) + r"$", re.MULTILINE | re.DOTALL)


def normalized(output: str) -> str:
    return "\n".join(line.rstrip() for line in output.replace("\r\n", "\n").split("\n"))


def first_unmatched(expected: list[str], output: str) -> str | None:
    """The first expected line not found (in order) in `output`, or None when all are."""
    text, position = normalized(output), 0
    for line in expected:
        found = expectation(line).search(text, position)
        if not found:
            return line
        position = found.end()
    return None


# ---------------------------------------------------------------------------------------------
# Commands as run


def as_run(text: str, bin_dir: Path, scratch: Path) -> str:
    """The command with the deliberate differences applied (see the module's docstring)."""

    def binary(call: re.Match) -> str:
        package = re.search(r"(?:-p|--package|--bin)\s+([\w-]+)", call.group(1))
        if not package or not (bin_dir / package.group(1)).exists():
            raise ValueError(f"`{call.group(0)}`: no binary of that package in {bin_dir}")
        return package.group(1)

    text = CARGO_RUN.sub(binary, text)
    text = text.replace("/abs/path/", f"{scratch}/")
    text = re.sub(r"(?<![\w./])/tmp/", f"{scratch}/tmp/", text)
    if re.search(r"(?:^|[\s;&|(])cargo\s", text):
        raise ValueError("calls cargo, which would wait on the build lock of `cargo test`")
    return text


def serve_address(text: str) -> tuple[str, int] | None:
    """Where a command that starts serve in the background listens; None for other commands."""
    last_line = text.rstrip().split("\n")[-1]
    found = SERVE.search(last_line)
    if not found:
        return None
    listen = re.search(r"--listen[\s=](\S+)", found.group(1))
    if not listen:
        return DOCS_ADDRESS
    host, _, port = listen.group(1).rpartition(":")
    return host, int(port)


class Session:
    """One bash in a scratch copy of the checkout; commands are sourced into it one by one."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.scratch = Path(tempfile.mkdtemp(prefix="docs-commands-"))
        self.control = self.scratch / ".docs-commands"
        self.count = 0
        copy_checkout(self.scratch)
        self.control.mkdir()
        (self.scratch / "tmp").mkdir()
        env = dict(os.environ, PATH=f"{args.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
        for proxy in PROXY_VARIABLES:  # curl would send 127.0.0.1 requests through them
            env.pop(proxy, None)
            env.pop(proxy.upper(), None)
        env.update(GIT_AUTHOR_NAME="docs", GIT_AUTHOR_EMAIL="docs@localhost")
        env.update(GIT_COMMITTER_NAME="docs", GIT_COMMITTER_EMAIL="docs@localhost")
        self.log = open(self.control / "session.log", "wb")
        self.bash = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            cwd=self.scratch,
            env=env,
            stdin=subprocess.PIPE,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            text=True,
        )
        self.dead = None
        self.closed = False

    def run(self, command: Command) -> tuple[int | None, str]:
        """Runs one command; its exit status (None: timed out or still serving) and output."""
        self.count += 1
        base = self.control / str(self.count)
        text = as_run(command.text, self.args.bin_dir, self.scratch)
        if command.python:
            Path(f"{base}.py").write_text(text)
            text = f"{shlex.quote(str(self.args.python))} {shlex.quote(f'{base}.py')}"
        Path(f"{base}.sh").write_text(text + "\n")
        address = serve_address(text) if command.exit == 0 and not command.python else None
        out, rc = Path(f"{base}.out"), Path(f"{base}.rc")
        quoted = {suffix: shlex.quote(f"{base}.{suffix}") for suffix in ("sh", "out", "rc")}
        source = f"{{ . {quoted['sh']}; }} >{quoted['out']} 2>&1 </dev/null"
        finish = f"echo $? >{quoted['rc']}.tmp; mv {quoted['rc']}.tmp {quoted['rc']}"
        if address:
            self.send(f"( {source}; {finish} ) &\n")
            status = self.wait_healthy(address, rc)
        else:
            self.send(f"{source}; {finish}\n")
            status = self.wait_status(rc)
        return status, out.read_text(errors="replace") if out.exists() else ""

    def send(self, line: str) -> None:
        if self.dead:
            raise RuntimeError(self.dead)
        self.bash.stdin.write(line)
        self.bash.stdin.flush()

    def wait_status(self, rc: Path) -> int | None:
        deadline = time.monotonic() + self.args.timeout
        while time.monotonic() < deadline:
            if rc.exists():
                return int(rc.read_text())
            time.sleep(0.05)
        self.dead = f"the session was stopped: a command ran longer than {self.args.timeout} s"
        self.close()
        return None

    def wait_healthy(self, address: tuple[str, int], rc: Path) -> int | None:
        """0 once the server answers /healthz; its status if it exits first; None on timeout."""
        url = f"http://{address[0]}:{address[1]}/healthz"
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + HEALTH_WAIT_S
        while time.monotonic() < deadline:
            if rc.exists():
                return int(rc.read_text()) or 1  # a server that exited is a failure
            try:
                with direct.open(url, timeout=2) as answer:
                    if answer.status == 200:
                        return 0
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        return None

    def close(self) -> None:
        """Stops the bash and what it started (its servers): the process group we created."""
        if self.closed:
            return
        self.closed = True
        group = self.bash.pid
        for sig, wait in ((signal.SIGTERM, STOP_WAIT_S), (signal.SIGKILL, 5)):
            try:
                os.killpg(group, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and group_alive(group):
                self.bash.poll()
                time.sleep(0.1)
            if not group_alive(group):
                break
        self.bash.wait()
        self.log.close()
        if not self.args.keep:
            shutil.rmtree(self.scratch, ignore_errors=True)
        else:
            print(f"     kept {self.scratch}")


def group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
        return True
    except ProcessLookupError:
        return False


def copy_checkout(scratch: Path) -> None:
    """The checkout's files as a reader has them, committed as `origin/main` of a new repo."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, check=True, capture_output=True,
    ).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (scratch / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, scratch / name)
    git = ["git", "-c", "user.name=docs", "-c", "user.email=docs@localhost"]
    git += ["-c", "init.defaultBranch=main"]
    for step in (["init", "-q"], ["add", "-A"], ["commit", "-q", "--no-verify", "-m", "docs"],
                 ["update-ref", "refs/remotes/origin/main", "HEAD"]):
        subprocess.run(git + step, cwd=scratch, check=True, capture_output=True)


# ---------------------------------------------------------------------------------------------
# Reporting


class Tally:
    def __init__(self) -> None:
        self.passed = self.failed = self.not_run = 0

    def ok(self, where: str, what: str) -> None:
        self.passed += 1
        print(f"ok   {where}  {what}")

    def fail(self, where: str, what: str, why: str, output: str = "") -> None:
        self.failed += 1
        print(f"FAIL {where}  {what}\n     {why}")
        for line in output.rstrip().splitlines()[-40:]:
            print(f"     | {line}")


def one_line(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first if len(first) <= 90 else first[:87] + "..."


def check(session: Session, block: Block, command: Command, tally: Tally) -> None:
    where = block.where(command.line)
    what = "python block" if command.python else one_line(command.text)
    try:
        status, output = session.run(command)
    except (ValueError, RuntimeError) as problem:
        tally.fail(where, what, str(problem))
        return
    missing = first_unmatched(command.expect, output)
    if status is None:
        tally.fail(where, what, session.dead or f"no /healthz answer in {HEALTH_WAIT_S} s", output)
    elif status != command.exit:
        tally.fail(where, what, f"exit status {status}, expected {command.exit}", output)
    elif missing is not None:
        tally.fail(where, what, f"expected line not found (in order): {missing}", output)
    else:
        tally.ok(where, what)


def run_block(session: Session, block: Block, tally: Tally) -> None:
    for setup in block.setup:
        status, output = session.run(Command(setup, block.line))
        if status != 0:
            tally.fail(block.where(), f"setup `{setup}`", f"exit status {status}", output)
            return
    for command in block.commands:
        check(session, block, command, tally)


def run_document(doc: Path, blocks: list[Block], args: argparse.Namespace, tally: Tally) -> None:
    shared = None
    try:
        for block in blocks:
            if block.setup:
                own = Session(args)
                try:
                    run_block(own, block, tally)
                finally:
                    own.close()
                continue
            shared = shared or Session(args)
            run_block(shared, block, tally)
    finally:
        if shared:
            shared.close()


# ---------------------------------------------------------------------------------------------
# The network namespace


def loopback_up() -> None:
    """`ip link set lo up`, by ioctl (a new network namespace starts with its loopback down)."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(sock, siocgifflags, request))[1]
        fcntl.ioctl(sock, siocsifflags, struct.pack("16sH22x", b"lo", flags | iff_up))


def namespace_command() -> list[str] | None:
    """How to run in a network namespace of our own, or None when this system cannot."""
    if not shutil.which("unshare"):
        return None
    command = ["unshare", "--net"] + ([] if os.geteuid() == 0 else ["--map-root-user"])
    probe = subprocess.run(command + ["true"], capture_output=True)
    return command if probe.returncode == 0 else None


def address_free(address: tuple[str, int]) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(address)
            return True
        except OSError:
            return False


# ---------------------------------------------------------------------------------------------


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin-dir", type=Path, required=True,
                        help="where contractc, contract-runtime, contract-deploy were built")
    parser.add_argument("--python", type=Path, default=Path(sys.executable),
                        help="python for python blocks (needs pyiceberg)")
    parser.add_argument("--timeout", type=float, default=180, help="seconds per command")
    parser.add_argument("--list", action="store_true", help="list the blocks and what is done")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directories")
    parser.add_argument("docs", nargs="*", type=Path)
    args = parser.parse_args()
    args.bin_dir = args.bin_dir.resolve()
    all_docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    args.docs = [d.resolve() for d in args.docs] or all_docs
    return args


def list_blocks(documents: dict[Path, list[Block]]) -> None:
    for blocks in documents.values():
        for block in blocks:
            if block.problems:
                print(f"{block.where()}  PROBLEM: {'; '.join(block.problems)}")
            elif block.not_run is not None:
                print(f"{block.where()}  not run: {block.not_run}")
            else:
                print(f"{block.where()}  runs {len(block.commands)} command(s)"
                      + (f" after {len(block.setup)} setup(s)" if block.setup else ""))


def main() -> int:
    args = arguments()
    documents = {}
    for doc in args.docs:
        documents[doc] = [b for b in fenced_blocks(doc) if in_scope(b)]
        for block in documents[doc]:
            parse(block)
    if args.list:
        list_blocks(documents)
        return 0
    if not os.environ.get(IN_NAMESPACE):
        namespace = namespace_command()
        if namespace:
            env = dict(os.environ, **{IN_NAMESPACE: "1"})
            return subprocess.run(namespace + [sys.executable, *sys.argv], env=env).returncode
        print("no network namespace (unshare): using the host's 127.0.0.1:8080")
        if not address_free(DOCS_ADDRESS):
            print("docs commands: 0 passed, 1 failed (127.0.0.1:8080 is in use; the docs use it)")
            return 1
    else:
        loopback_up()
    tally = Tally()
    for doc, blocks in documents.items():
        for block in blocks:
            if block.problems:
                tally.fail(block.where(), "block", "; ".join(block.problems))
            elif block.not_run is not None:
                tally.not_run += 1
                print(f"--   {block.where()}  not run: {block.not_run}")
        runnable = [b for b in blocks if not b.problems and b.not_run is None]
        if runnable:
            run_document(doc, runnable, args, tally)
    print(f"{tally.not_run} blocks not run, each with its reason")
    print(f"docs commands: {tally.passed} passed, {tally.failed} failed")
    return 1 if tally.failed else 0


if __name__ == "__main__":
    sys.exit(main())
