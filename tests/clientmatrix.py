"""The shared client matrix: which scenario runners exist (tests/clients/SCENARIOS.md), whether each can
run on this machine, and how to run one.

A runner is in one of four states:

    absent       this checkout has no source for it             the test is skipped, saying so
    unavailable  the toolchain it needs is not on this machine  the test is skipped, saying what is missing
    not built    the toolchain is here, `make clients` was not  the test FAILS: a client that silently
                 run (or failed)                                 skips is a client nobody tests
    ready

:func:`run` runs one scenario and returns the runner's result (its last stdout line, parsed); a crash
raises :class:`RunnerCrashed` with the runner's output, exit code 3 ("unsupported") skips the test
with the runner's reason. The command line gives the same view to `make clients`:

    python -m tests.clientmatrix status      one line per client: its state and why
    python -m tests.clientmatrix packages    Debian packages that would bring a missing toolchain
    python -m tests.clientmatrix buildable   the clients whose runner `make clients` can build here
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

from tests.serverproc import CLIENTS, REPO

LANGUAGES = ("python", "node", "java", "go", "rust")
PYTHON_CLIENT = "rocketmq-python-client"
NODE_CLIENT = "rocketmq-client-nodejs"
UNSUPPORTED = 3  # a runner's exit code for a scenario its client cannot do
RUST_MINIMUM = (1, 74)  # the rocketmq crate's rust-version, when the runner's Cargo.toml does not say
NODE_MINIMUM = (16, 19)  # rocketmq-client-nodejs 1.0.8's engines
GO_SELF_UPDATING = (1, 21)  # the first go that switches to the toolchain a go.mod asks for


def client_cache() -> Path:
    """Where `make clients` keeps what outlives a clone (the Rust target directory)."""
    return Path(os.environ.get("RMQ_CLIENT_CACHE") or Path.home() / ".cache" / "rmqproxy")


def version_tuple(text: str) -> tuple[int, ...] | None:
    """The first dotted number in ``text`` ("go version go1.22.3" -> (1, 22, 3))."""
    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    return tuple(int(part) for part in match.groups() if part is not None) if match else None


def dotted(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))


@dataclass(frozen=True)
class Tool:
    """A program a runner needs, the Debian package that brings it, and the version it must have."""

    program: str
    package: str
    version_args: tuple[str, ...] = ()
    minimum: tuple[int, ...] | None = None
    minimum_source: str = ""
    debian_version_of: str = ""
    """The Debian package whose version is the tool's (rustc for cargo); default: ``package``."""

    def problem(self) -> str | None:
        """Why this tool cannot be used here, or None."""
        path = shutil.which(self.program)
        if path is None:
            return f"`{self.program}` is not on PATH"
        if self.minimum is None:
            return None
        found = installed_version(path, self.version_args)
        if found is None or found < self.minimum:
            have = "an unknown version" if found is None else dotted(found)
            return f"`{self.program}` is {have}, older than {dotted(self.minimum)} ({self.minimum_source})"
        return None

    def debian_candidate_fits(self) -> bool:
        """Whether installing the Debian package would bring a version new enough."""
        candidate = debian_candidate(self.debian_version_of or self.package)
        return candidate is not None and (self.minimum is None or candidate >= self.minimum)

    def install_hint(self) -> str:
        """How the tool could be had: from Debian through `make clients`, or else by hand."""
        if self.debian_candidate_fits():
            return f"`make clients` installs Debian's {self.package} where it may run apt-get"
        package = self.debian_version_of or self.package
        candidate = debian_candidate(package)
        if shutil.which("apt-cache") is None:
            return "no apt-get on this machine: install it by hand"
        if candidate is None:
            return f"apt-get has no {package} here: install it by hand"
        return f"Debian's {package} is {dotted(candidate)}: install a newer one by hand"


@functools.cache
def installed_version(path: str, args: tuple[str, ...]) -> tuple[int, ...] | None:
    result = subprocess.run([path, *args], capture_output=True, text=True, timeout=60)
    return version_tuple(result.stdout + result.stderr)


@functools.cache
def debian_candidate(package: str) -> tuple[int, ...] | None:
    """The version apt-get would install (epoch dropped), or None (no apt, no such package)."""
    if shutil.which("apt-cache") is None:
        return None
    result = subprocess.run(["apt-cache", "policy", package], capture_output=True, text=True, timeout=60)
    match = re.search(r"Candidate:\s*(?:\d+:)?(\S+)", result.stdout)
    return version_tuple(match.group(1)) if match and match.group(1) != "(none)" else None


def manifest_minimum(path: Path, pattern: str) -> tuple[int, ...] | None:
    """A minimum toolchain version a manifest declares (go.mod's `go`, Cargo.toml's `rust-version`)."""
    if not path.exists():
        return None
    match = re.search(pattern, path.read_text(), re.MULTILINE)
    return version_tuple(match.group(1)) if match else None


@dataclass(frozen=True)
class Runner:
    language: str
    source: Path
    """The manifest that says this checkout has the runner."""
    command: tuple[str, ...]
    """What runs it, before the scenario's arguments."""
    run_tools: tuple[Tool, ...]
    build_tools: tuple[Tool, ...]
    artifact: Path | None
    """What `make clients` builds; None when :meth:`built` checks something else."""

    def built(self) -> str | None:
        """Why the runner is not built, or None when it is."""
        if self.language == "python":
            try:
                importlib.metadata.version(PYTHON_CLIENT)
            except importlib.metadata.PackageNotFoundError:
                return f"{PYTHON_CLIENT} is not installed in this Python: run `make install-test`"
            return None
        if self.language == "node":
            wanted = json.loads(self.source.read_text())["dependencies"][NODE_CLIENT]
            package = self.source.parent / "node_modules" / NODE_CLIENT / "package.json"
            found = json.loads(package.read_text())["version"] if package.exists() else None
            if found != wanted:
                have = "not installed" if found is None else f"{found}, not {wanted}"
                return f"{NODE_CLIENT} is {have}: run `make clients` (npm ci in {rel(self.source.parent)})"
            return None
        assert self.artifact is not None
        if not self.artifact.exists():
            return f"the {self.language} runner is not built ({rel(self.artifact)} is missing): run `make clients`"
        return None


def rel(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def runners() -> dict[str, Runner]:
    java, go, rust = CLIENTS / "java", CLIENTS / "go", CLIENTS / "rust"
    # A go from 1.21 on fetches the toolchain go.mod asks for through the module proxy (GOTOOLCHAIN=auto).
    go_minimum = min(manifest_minimum(go / "go.mod", r"^go\s+(\S+)") or GO_SELF_UPDATING, GO_SELF_UPDATING)
    rust_minimum = manifest_minimum(rust / "Cargo.toml", r"^rust-version\s*=\s*\"([^\"]+)\"") or RUST_MINIMUM
    node = Tool("node", "nodejs", ("--version",), NODE_MINIMUM, f"{NODE_CLIENT} 1.0.8")
    jar = java / "target" / "rmq-java-runner.jar"
    go_binary = go / "bin" / "rmq-go-runner"
    rust_binary = client_cache() / "rust-target" / "release" / "rmq-rust-runner"
    return {
        "python": Runner("python", CLIENTS / "python" / "runner.py",
                         (sys.executable, str(CLIENTS / "python" / "runner.py")), (), (), None),
        "node": Runner("node", CLIENTS / "node" / "package.json", ("node", str(CLIENTS / "node" / "runner.js")),
                       (node,), (node, Tool("npm", "npm")), None),
        "java": Runner("java", java / "pom.xml", ("java", "-jar", str(jar)),
                       (Tool("java", "default-jdk-headless"),), (Tool("mvn", "maven"),), jar),
        "go": Runner("go", go / "go.mod", (str(go_binary),), (),
                     (Tool("go", "golang-go", ("version",), go_minimum,
                               "tests/clients/go/go.mod's, or 1.21, which fetches that one"),), go_binary),
        "rust": Runner("rust", rust / "Cargo.toml", (str(rust_binary),), (),
                       (Tool("cargo", "cargo", ("--version",), rust_minimum, "the runner's Cargo.toml",
                             debian_version_of="rustc"),), rust_binary),
    }


@dataclass(frozen=True)
class Status:
    language: str
    state: str
    """ready, absent, unavailable or not built."""
    reason: str


@functools.cache
def status(language: str) -> Status:
    runner = runners()[language]
    if not runner.source.exists():
        return Status(language, "absent", f"no {language} runner in this checkout ({rel(runner.source)} is missing)")
    not_built = runner.built()
    tools = runner.run_tools if not_built is None else runner.run_tools + runner.build_tools
    missing = [(tool, problem) for tool in tools if (problem := tool.problem()) is not None]
    if missing:
        hints = [f"{problem} ({tool.install_hint()})" for tool, problem in missing]
        return Status(language, "unavailable", f"{language} client skipped: {'; '.join(hints)}")
    if not_built is not None:
        return Status(language, "not built", not_built)
    return Status(language, "ready", "ready")


def require(language: str) -> None:
    """Skip the calling test when the runner is absent or its toolchain missing; fail it when not built."""
    found = status(language)
    if found.state in ("absent", "unavailable"):
        pytest.skip(found.reason)
    if found.state == "not built":
        pytest.fail(found.reason, pytrace=False)


class RunnerCrashed(AssertionError):
    """The runner exited with neither 0 nor 3, or printed no JSON result."""


def arguments(scenario: str, options: dict[str, Any]) -> list[str]:
    """``topic="t", max_wait_s=5, ack=True`` -> ``--topic t --max-wait-s 5 --ack`` (None and False omitted)."""
    argv = [scenario]
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value is not None and value is not False:
            argv += [flag, str(value)]
    return argv


class RunningScenario:
    """A runner started in the background (:func:`start`); :meth:`result` waits for it."""

    def __init__(self, language: str, argv: list[str], env: dict[str, str] | None) -> None:
        self.language = language
        self.argv = argv
        # Files, not pipes: a runner that writes a lot on stderr must never block on a full pipe.
        # Closed by result() or kill(), whichever comes first.
        self._stdout: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        self.process = subprocess.Popen(argv, stdout=self._stdout, stderr=self._stderr, cwd=REPO,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})

    def _stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)

    def _outputs(self) -> tuple[str, str]:
        """What the runner printed, once; closes the files."""
        outputs = []
        for stream in (self._stdout, self._stderr):
            stream.seek(0)
            outputs.append(stream.read().decode(errors="replace"))
            stream.close()
        return outputs[0], outputs[1]

    def result(self, timeout: float = 300) -> Any:
        """The runner's result once it ended; skips the test for "unsupported", raises on a crash."""
        try:
            code: int | None = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._stop()
            code = None
        stdout, stderr = self._outputs()
        lines = [line for line in stdout.splitlines() if line.strip()]
        try:
            result = json.loads(lines[-1]) if lines else None
        except json.JSONDecodeError:
            result = None
        if code == UNSUPPORTED and isinstance(result, dict) and "unsupported" in result:
            pytest.skip(f"{self.language}: {result['unsupported']}")
        if code != 0 or not isinstance(result, dict):
            what = (f"did not finish in {timeout:g} s" if code is None else f"exited with {code}" if code != 0
                    else "printed no JSON object as its last line")
            raise RunnerCrashed(f"{self.language} runner {what}: {' '.join(self.argv)}\n"
                                f"--- stdout (end) ---\n{stdout[-3000:]}\n--- stderr (end) ---\n{stderr[-5000:]}")
        return result

    def kill(self) -> None:
        """Stop the runner if it still runs (a test failed before waiting for it)."""
        self._stop()
        if not self._stdout.closed:
            self._outputs()


def start(language: str, scenario: str, *, env: dict[str, str] | None = None, **options: Any) -> RunningScenario:
    """Start ``scenario`` with ``language``'s runner; options as keywords (``endpoint=server.address, ...``).
    Skips or fails the test first when the runner cannot run (:func:`require`)."""
    require(language)
    return RunningScenario(language, [*runners()[language].command, *arguments(scenario, options)], env)


def run(language: str, scenario: str, *, timeout: float = 300, env: dict[str, str] | None = None,
        **options: Any) -> Any:
    """Run ``scenario`` with ``language``'s runner to its end and return its result."""
    running = start(language, scenario, env=env, **options)
    try:
        return running.result(timeout)
    finally:
        running.kill()


@functools.cache
def server_has_tls() -> bool:
    """Whether this checkout's ``rmqproxy serve`` has TLS (``--tls-mode``)."""
    result = subprocess.run([sys.executable, "-m", "rmqproxy", "serve", "--help"], capture_output=True, text=True,
                            cwd=REPO, timeout=60)
    return "--tls-mode" in result.stdout


def default_tls(language: str) -> str:
    """The ``--tls`` a plain (non-TLS) test gives: the client's own default, which for Java and Go is TLS,
    as long as the server speaks it; before that, ``off``."""
    if server_has_tls() or language not in ("java", "go"):
        return "default"
    return "off"


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost and its key (PEM), made with openssl."""
    if shutil.which("openssl") is None:
        pytest.skip("`openssl` is not on PATH: it makes the test's certificate")
    cert, key = directory / "server-cert.pem", directory / "server-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "2", "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert),
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "status"
    if command == "status":
        for language in LANGUAGES:
            found = status(language)
            print(f"{language:7} {found.state:12} {'' if found.state == 'ready' else found.reason}".rstrip())
    elif command == "packages":
        wanted: list[str] = []
        for runner in runners().values():
            if runner.source.exists():
                tools = runner.run_tools + runner.build_tools
                wanted += [tool.package for tool in tools if tool.problem() and tool.debian_candidate_fits()]
        print(" ".join(dict.fromkeys(wanted)))
    elif command == "buildable":
        print(" ".join(language for language in ("node", "java", "go", "rust")
                       if status(language).state in ("ready", "not built")))
    else:
        print(f"usage: python -m tests.clientmatrix [status|packages|buildable]\n{__doc__}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
