"""Run a real single-node Apache Kafka broker (KRaft) from Maven Central jars.

Called by ``scripts/kafka``; standard library only, so it runs before the venv exists.

    scripts/kafka fetch [--no-progress]  # jars into .kafka/libs/ (cached)
    scripts/kafka start [--dir DIR]      # prints KAFKA_BOOTSTRAP=127.0.0.1:<port>
    scripts/kafka status [--dir DIR]     # exit 0 when running, 3 when not
    scripts/kafka stop [--dir DIR]       # SIGTERM, SIGKILL after a grace

Everything binds to 127.0.0.1 on ports picked free per start; each start formats a fresh
data directory with a random cluster id. DIR (default ``.kafka/run``) holds
server.properties, log4j2.properties, broker.log, broker.out, the data, ``broker.pid``
and ``bootstrap``.

``fetch`` shows the jars downloaded and copied on stderr when it is a terminal (a tqdm bar
when tqdm is importable, else one line rewritten in place); ``--no-progress`` or
``DRIFTLINE_PROGRESS=0`` turn that off.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
POM = REPO / "scripts" / "kafka-pom.xml"
KAFKA_HOME = REPO / ".kafka"
LIBS = KAFKA_HOME / "libs"
LIBS_MARKER = ".complete"  # written last by fetch: the pom's hash, then one jar a line
DEFAULT_RUN_DIR = KAFKA_HOME / "run"

HOST = "127.0.0.1"  # never "localhost": it may resolve to ::1 first
READY_LINE = "Kafka Server started"
START_TIMEOUT_S = 180.0
STOP_GRACE_S = 15.0
PORT_ATTEMPTS = 3  # a port picked free can be taken before the broker binds it
JVM_OPTS = ["-Xms256m", "-Xmx512m", "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true"]
MESSAGE_MAX_BYTES = 4 * 1024 * 1024  # room for 1.5 MiB test messages and their DLQ copies

SERVER_PROPERTIES = """\
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}
advertised.listeners=PLAINTEXT://{host}:{port}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
controller.quorum.bootstrap.servers={host}:{controller_port}
log.dirs={data_dir}
num.partitions=1
auto.create.topics.enable=false
message.max.bytes={message_max_bytes}
# one node: every internal topic has a single replica
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# fast tests on a small shared machine
offsets.topic.num.partitions=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.num.partitions=1
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
num.network.threads=2
num.io.threads=2
"""

LOG4J2_PROPERTIES = """\
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {log_file}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
"""


class BrokerError(RuntimeError):
    """A step of fetching, starting or stopping the broker failed; the message says why."""


# ---------------------------------------------------------------- fetch


def _pom_digest() -> str:
    return hashlib.sha256(POM.read_bytes()).hexdigest()


def libs_complete() -> bool:
    """True when .kafka/libs holds every jar the current pom resolved to."""
    marker = LIBS / LIBS_MARKER
    if not marker.is_file():
        return False
    digest, *jars = marker.read_text().split()
    return digest == _pom_digest() and bool(jars) and all((LIBS / j).is_file() for j in jars)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise fetches: two test sessions may start at once on the same checkout."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


_DOWNLOADED = re.compile(r"Downloaded from \S+: \S+\.jar\b")
POLL_S = 0.2  # how often the jars in the staging folder are counted


def jar_downloaded(line: str) -> bool:
    """Whether a line of mvn's output says that a jar was downloaded.

    >>> jar_downloaded("[INFO] Downloaded from central: https://r/x/kafka_2.13-4.4.0.jar (6 MB)")
    True
    >>> jar_downloaded("[INFO] Downloaded from central: https://r/x/kafka_2.13-4.4.0.pom (2 kB)")
    False
    """
    return _DOWNLOADED.search(line) is not None


def progress_wanted(no_progress: bool) -> bool:
    """Progress only for a person: stderr is a terminal, and it is not turned off."""
    off = no_progress or os.environ.get("DRIFTLINE_PROGRESS", "").strip() == "0"
    return not off and sys.stderr.isatty()


class _JarProgress:
    """Jars copied into the staging folder (of ``total``, when a previous fetch told) and
    jars downloaded so far: a tqdm bar when tqdm is importable, else one line rewritten."""

    def __init__(self, enabled: bool, total: int | None) -> None:
        self.enabled, self.total = enabled, total
        self.downloaded = self.copied = 0
        self._shown = (-1, -1)
        self._bar: Any = None
        if enabled:
            try:
                from tqdm import tqdm  # noqa: PLC0415 - in the venv; this script runs without it
            except ImportError:
                return
            self._bar = tqdm(total=total, unit="jar", desc="kafka jars", file=sys.stderr,
                             leave=False, dynamic_ncols=True)

    def show(self, copied: int) -> None:
        if not self.enabled or (copied, self.downloaded) == self._shown:
            return
        self._shown = (copied, self.downloaded)
        if self._bar is not None:
            self._bar.update(copied - self.copied)
            self._bar.set_postfix_str(f"{self.downloaded} downloaded")
        else:
            of = f"/{self.total}" if self.total else ""
            print(f"\rkafka jars: {self.downloaded} downloaded, {copied}{of} copied",
                  end="", file=sys.stderr, flush=True)
        self.copied = copied

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self.enabled:
            print(file=sys.stderr)


def _previous_jar_count() -> int | None:
    """How many jars the last complete fetch copied (a good guess at this one's total)."""
    marker = LIBS / LIBS_MARKER
    return (len(marker.read_text().split()) - 1 or None) if marker.is_file() else None


def _run_mvn(cmd: list[str], staging: Path, progress: _JarProgress) -> tuple[int, str]:
    """Run mvn; while it runs, count downloads in its output and jars in ``staging``.
    Returns (exit code, the output's tail)."""
    tail: deque[str] = deque(maxlen=200)
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as proc:
        out = proc.stdout
        assert out is not None

        def read() -> None:
            for line in out:
                tail.append(line)
                if jar_downloaded(line):
                    progress.downloaded += 1

        reader = threading.Thread(target=read, name="mvn-output", daemon=True)
        reader.start()
        while progress.enabled and proc.poll() is None:
            progress.show(len(list(staging.glob("*.jar"))) if staging.is_dir() else 0)
            time.sleep(POLL_S)
        proc.wait()
        reader.join()
    if progress.enabled:
        progress.show(len(list(staging.glob("*.jar"))) if staging.is_dir() else 0)
        progress.close()
    return proc.returncode, "".join(tail)


def fetch(progress: bool = False) -> Path:
    """Copy the broker's runtime jars into .kafka/libs (skipped when already complete)."""
    if libs_complete():
        return LIBS
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError("mvn not found on PATH: install Maven (apt-get install maven)")
    with _locked(KAFKA_HOME / "fetch.lock"):
        if libs_complete():  # another process fetched while we waited for the lock
            return LIBS
        staging = KAFKA_HOME / "libs.partial"
        shutil.rmtree(staging, ignore_errors=True)
        cmd = [
            mvn,
            "-B",
            *([] if progress else ["-ntp"]),  # download lines only when they are counted
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={staging}",
        ]
        progress_line = _JarProgress(progress, _previous_jar_count())
        returncode, output = _run_mvn(cmd, staging, progress_line)
        jars = sorted(p.name for p in staging.glob("*.jar")) if staging.is_dir() else []
        if returncode != 0 or not jars:
            raise BrokerError(
                f"mvn could not fetch the Kafka jars (exit {returncode}) with {POM}:\n"
                + output[-4000:]
            )
        (staging / LIBS_MARKER).write_text("\n".join([_pom_digest(), *jars]) + "\n")
        shutil.rmtree(LIBS, ignore_errors=True)
        staging.rename(LIBS)
    return LIBS


# ---------------------------------------------------------------- processes


def _read_pid(run_dir: Path) -> int | None:
    try:
        return int((run_dir / "broker.pid").read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _is_our_broker(pid: int) -> bool:
    """Alive, not a zombie, and really a kafka.Kafka JVM (pids get reused)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z" and b"kafka.Kafka" in cmdline


def running_pid(run_dir: Path) -> int | None:
    pid = _read_pid(run_dir)
    return pid if pid is not None and _is_our_broker(pid) else None


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((HOST, 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java or not Path(java).exists():
        raise BrokerError("java not found (PATH or JAVA_HOME): install a JDK 17+")
    return java


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"({path.name} was not written)"


def _port_was_taken(run_dir: Path) -> bool:
    log = run_dir / "broker.log"
    return log.exists() and "Address already in use" in log.read_text(errors="replace")


# ---------------------------------------------------------------- start / stop


def _write_config(run_dir: Path, port: int, controller_port: int) -> tuple[Path, Path]:
    data_dir = run_dir / "data"
    shutil.rmtree(data_dir, ignore_errors=True)
    for name in ("broker.log", "broker.out", "format.out"):
        (run_dir / name).unlink(missing_ok=True)
    server = run_dir / "server.properties"
    server.write_text(
        SERVER_PROPERTIES.format(
            host=HOST,
            port=port,
            controller_port=controller_port,
            data_dir=data_dir,
            message_max_bytes=MESSAGE_MAX_BYTES,
        )
    )
    log4j = run_dir / "log4j2.properties"
    log4j.write_text(LOG4J2_PROPERTIES.format(log_file=run_dir / "broker.log"))
    return server, log4j


def _launch(run_dir: Path, libs: Path, timeout_s: float) -> str:
    """One attempt: configure, format, start and wait. Returns the bootstrap address."""
    port, controller_port = _free_ports(2)
    server, log4j = _write_config(run_dir, port, controller_port)
    base = [_java(), *JVM_OPTS, f"-Dlog4j2.configurationFile={log4j}", "-cp", f"{libs}/*"]
    cluster_id = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()

    fmt = [
        *base,
        "kafka.tools.StorageTool",
        "format",
        "--standalone",
        "-t",
        cluster_id,
        "-c",
        str(server),
    ]
    with (run_dir / "format.out").open("wb") as out:
        done = subprocess.run(fmt, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        raise BrokerError(f"formatting {run_dir / 'data'} failed:\n{_tail(run_dir / 'format.out')}")

    with (run_dir / "broker.out").open("wb") as out:
        # Own session: the broker outlives this script and ignores the caller's Ctrl-C.
        proc = subprocess.Popen(
            [*base, "kafka.Kafka", str(server)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=run_dir,
        )
    (run_dir / "broker.pid").write_text(f"{proc.pid}\n")

    log = run_dir / "broker.log"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            (run_dir / "broker.pid").unlink(missing_ok=True)
            raise BrokerError(
                f"the broker exited with code {proc.returncode} before it was ready:\n"
                f"{_tail(log)}\n--- broker.out ---\n{_tail(run_dir / 'broker.out', 20)}"
            )
        if log.exists() and READY_LINE in log.read_text(errors="replace"):
            bootstrap = f"{HOST}:{port}"
            (run_dir / "bootstrap").write_text(bootstrap + "\n")
            return bootstrap
        time.sleep(0.25)
    stop(run_dir)
    raise BrokerError(f"the broker was not ready after {timeout_s:.0f} s:\n{_tail(log)}")


def start(run_dir: Path, timeout_s: float = START_TIMEOUT_S) -> str:
    """Start a broker in run_dir unless one runs there already; return its bootstrap."""
    run_dir.mkdir(parents=True, exist_ok=True)
    if running_pid(run_dir) is not None and (run_dir / "bootstrap").is_file():
        print(f"already running in {run_dir}", file=sys.stderr)
        return (run_dir / "bootstrap").read_text().strip()
    (run_dir / "bootstrap").unlink(missing_ok=True)
    libs = fetch()
    attempt = 1
    while True:
        try:
            return _launch(run_dir, libs, timeout_s)
        except BrokerError:
            if attempt == PORT_ATTEMPTS or not _port_was_taken(run_dir):
                raise
            print("a picked port was taken meanwhile; retrying", file=sys.stderr)
            attempt += 1


def stop(run_dir: Path, grace_s: float = STOP_GRACE_S) -> bool:
    """Stop the broker of run_dir; True if one was running. Never fails when none is."""
    pid = running_pid(run_dir)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while _is_our_broker(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _is_our_broker(pid):
            print(f"broker {pid} ignored SIGTERM for {grace_s:.0f} s; killing", file=sys.stderr)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            while _is_our_broker(pid):
                time.sleep(0.1)
    (run_dir / "broker.pid").unlink(missing_ok=True)
    (run_dir / "bootstrap").unlink(missing_ok=True)
    return pid is not None


# ---------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/kafka", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    fetch_command = commands.add_parser(
        "fetch", help="fetch the broker's jars into .kafka/libs (cached)")
    fetch_command.add_argument(
        "--no-progress", action="store_true",
        help="no progress on stderr (shown only on a terminal; DRIFTLINE_PROGRESS=0 also "
        "turns it off)")
    for name, text in [
        ("start", "start a broker"),
        ("stop", "stop the broker"),
        ("status", "is the broker running?"),
    ]:
        sub = commands.add_parser(name, help=text)
        sub.add_argument(
            "--dir",
            type=Path,
            default=DEFAULT_RUN_DIR,
            help="run directory (default: .kafka/run in the repo)",
        )
        if name == "start":
            sub.add_argument(
                "--timeout",
                type=float,
                default=START_TIMEOUT_S,
                help="seconds to wait for readiness (default: %(default)s)",
            )
    args = parser.parse_args(argv)

    try:
        if args.command == "fetch":
            print(fetch(progress_wanted(args.no_progress)))
            return 0
        run_dir = args.dir.resolve()
        if args.command == "start":
            began = time.monotonic()
            bootstrap = start(run_dir, args.timeout)
            print(f"broker ready in {time.monotonic() - began:.1f} s", file=sys.stderr)
            print(f"KAFKA_BOOTSTRAP={bootstrap}", flush=True)
            return 0
        if args.command == "stop":
            print("stopped" if stop(run_dir) else "not running", file=sys.stderr)
            return 0
        pid = running_pid(run_dir)
        if pid is None:
            print(f"not running ({run_dir})")
            return 3
        bootstrap_file = run_dir / "bootstrap"
        bootstrap = bootstrap_file.read_text().strip() if bootstrap_file.exists() else "?"
        print(f"running pid={pid} KAFKA_BOOTSTRAP={bootstrap} ({run_dir})")
        return 0
    except BrokerError as err:
        print(f"scripts/kafka {args.command}: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
