"""ClearBG's public API under load, against rembg's own server, on loopback.

    python bench/api_load.py [--clients 1,4,16,64] [--duration 30] [--soak 300] [--skip-rembg]

Starts ClearBG in production mode on a fresh PostgreSQL database (`reflex run --env prod
--backend-only`: the same backend, API routes and lifespan as `make run`, without building the
frontend, which the API does not use), with an account, credits and an API key made through the
services; then `rembg s` from PyPI (bench/.rembg-venv, the same model file: CLEARBG_MODEL_PATH, u2net). Each server in
turn gets N concurrent clients for `--duration` seconds per N, mixing `size=preview` and
`size=full` requests on the U^2-Net sample photos, then `--soak` seconds at N=16 while its RSS
is sampled. Every request sent is counted, and every answer (a status code) or failure
(connection error, timeout); a request still in flight at the end of a step is waited for.
Prints a Markdown table per server, the ClearBG/rembg ratios and PASS/FAIL per target of
issues 6 and 13.

Clients behave as remove.bg's documentation asks: on 503 or 429 they wait `Retry-After`
seconds (never past the end of the step) before the next request. rembg has no preview size,
so it computes the full-size cut-out for both kinds (`--sizes full` makes the load identical).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT)]

from inference import OUT, REMBG_HOME, rembg_model, rembg_python  # noqa: E402  (bench/inference.py)

SAMPLES = ROOT.parent / "shared" / "testdata" / "u2net_samples" / "images"
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
CLEARBG_PATH = "/api/v1.0/removebg"
REMBG_PATH = "/api/remove"
MEDIA_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}
DELIBERATE_5XX = {503}  # the inference queue is full: answered at once with Retry-After


# ----------------------------------------------------------------------------- pure helpers
def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation between closest ranks; nan if empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def rss_slope_mb_per_min(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) samples, in MB per minute; 0 with fewer than 2 samples."""
    if len(samples) < 2:
        return 0.0
    mean_t = sum(t for t, _ in samples) / len(samples)
    mean_m = sum(m for _, m in samples) / len(samples)
    spread = sum((t - mean_t) ** 2 for t, _ in samples)
    if spread == 0:
        return 0.0
    return sum((t - mean_t) * (m - mean_m) for t, m in samples) / spread * 60


@dataclass
class Answer:
    """One request: how long it took and its status code, or why it got none."""

    kind: str
    seconds: float
    status: int | None = None
    error: str = ""


@dataclass
class StepResult:
    """One server under N clients for one step."""

    server: str
    clients: int
    elapsed: float  # from the first request to the last answer (requests in flight are waited for)
    answers: list[Answer]
    peak_rss_mb: float = math.nan
    rss_samples: list[tuple[float, float]] = field(default_factory=list)
    cpu_seconds: float = math.nan  # the server tree's CPU time during the step
    stopped: str = ""  # why the server was stopped during the step (the machine ran short of memory)

    @property
    def cpu_per_result(self) -> float:
        """Server CPU seconds per successful result: cost independent of the machine's other load."""
        return self.cpu_seconds / len(self.ok) if self.ok else math.nan

    @property
    def sent(self) -> int:
        return len(self.answers)

    @property
    def answered(self) -> int:
        return sum(a.status is not None for a in self.answers)

    @property
    def lost(self) -> int:
        return self.sent - self.answered

    @property
    def ok(self) -> list[Answer]:
        return [a for a in self.answers if a.status == 200]

    @property
    def throughput(self) -> float:
        """Successful results (200) per second."""
        return len(self.ok) / self.elapsed if self.elapsed > 0 else 0.0

    def latency(self, q: float, only_ok: bool = False) -> float:
        chosen = self.ok if only_ok else [a for a in self.answers if a.status is not None]
        return percentile([a.seconds for a in chosen], q)

    @property
    def statuses(self) -> Counter:
        return Counter(str(a.status) if a.status is not None else a.error for a in self.answers)

    @property
    def unexpected_5xx(self) -> int:
        return sum(1 for a in self.answers if a.status and a.status >= 500 and a.status not in DELIBERATE_5XX)


@dataclass
class Soak:
    server: str
    seconds: float
    samples: list[tuple[float, float]]  # (seconds since start, MB)
    result: StepResult

    @property
    def start_mb(self) -> float:
        return self.samples[0][1] if self.samples else math.nan

    @property
    def end_mb(self) -> float:
        return self.samples[-1][1] if self.samples else math.nan

    @property
    def peak_mb(self) -> float:
        return max((m for _, m in self.samples), default=math.nan)

    def _fifth(self, index: int) -> list[tuple[float, float]]:
        fifth = self.seconds / 5
        return [s for s in self.samples if index * fifth <= s[0] < (index + 1) * fifth or (index == 4 and s[0] >= 4 * fifth)]

    @property
    def slope(self) -> float:
        """Least-squares MB/min over the soak after its first fifth (the allocator's warm-up is not a leak)."""
        return rss_slope_mb_per_min([s for s in self.samples if s[0] >= self.seconds / 5] or self.samples)

    @property
    def growth_mb(self) -> float:
        """Median RSS of the last fifth minus that of the second fifth: the baseline's growth, which a
        leak raises, while single samples swing by 100 MB with the images in flight (a 6 MP photo)."""
        early, late = self._fifth(1), self._fifth(4)
        if not early or not late:
            return math.nan
        return statistics.median(m for _, m in late) - statistics.median(m for _, m in early)


FLAT_SHARE = 0.03  # "flat": the baseline grows by under 3% of the starting RSS over the soak


def check_targets(ours: list[StepResult], theirs: list[StepResult], soak: Soak | None) -> list[tuple[str, bool | None, str]]:
    """Issues 6 and 13's targets as (target, passed, evidence); passed is None when not measured."""
    checks: list[tuple[str, bool | None, str]] = []
    bad = {r.clients: r.unexpected_5xx for r in ours if r.unexpected_5xx}
    checks.append(("no 5xx other than deliberate 503s", not bad, f"unexpected 5xx by N: {bad}" if bad else "none"))
    lost = {r.clients: r.lost for r in ours + ([soak.result] if soak else []) if r.lost}
    checks.append(("every request answered", not lost, f"lost by N: {lost}" if lost else "all answered"))
    if soak is None:
        checks.append(("RSS flat at N=16", None, "no soak run"))
    else:
        checks.append(
            ("RSS flat at N=16", soak.growth_mb < FLAT_SHARE * soak.start_mb,
             f"{soak.start_mb:.0f} -> {soak.end_mb:.0f} MB (peak {soak.peak_mb:.0f}) over {soak.seconds:.0f} s; baseline "
             f"growth {soak.growth_mb:+.0f} MB (flat: under {FLAT_SHARE:.0%} of the start); slope {soak.slope:+.2f} MB/min")
        )  # fmt: skip
    by_n = {r.clients: r for r in theirs}
    pairs = [(r, by_n[r.clients]) for r in ours if r.clients in by_n]
    if not pairs:
        checks.append(("throughput >= rembg at every N", None, "rembg not run"))
        checks.append(("p95 lower than rembg at N >= 16", None, "rembg not run"))
        return checks
    slower = [f"N={a.clients}: {a.throughput:.2f} vs {b.throughput:.2f}/s" for a, b in pairs if a.throughput < b.throughput]
    checks.append(("throughput >= rembg at every N", not slower, "; ".join(slower) or "met at every N"))
    high = [(a, b) for a, b in pairs if a.clients >= 16]
    worse = [f"N={a.clients}: {a.latency(95):.2f} vs {b.latency(95):.2f} s" for a, b in high if not a.latency(95) < b.latency(95)]
    checks.append(("p95 lower than rembg at N >= 16", not worse if high else None, "; ".join(worse) or ("met" if high else "no N >= 16")))
    return checks


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b and not math.isnan(a) and not math.isnan(b) else "-"


def step_table(results: list[StepResult]) -> str:
    lines = [
        "| server | N | sent | answered | 200/s | p50 s | p95 s | p99 s | p95 s (200 only) | status codes | peak RSS MB | CPU s/result |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        codes = ", ".join(f"{k}: {v}" for k, v in sorted(r.statuses.items()))
        lines.append(
            f"| {r.server} | {r.clients} | {r.sent} | {r.answered}{'' if r.lost == 0 else f' ({r.lost} lost)'} | "
            f"{r.throughput:.2f} | {r.latency(50):.2f} | {r.latency(95):.2f} | {r.latency(99):.2f} | "
            f"{r.latency(95, only_ok=True):.2f} | {codes}{f' ({r.stopped})' if r.stopped else ''} | {r.peak_rss_mb:.0f} | "
            f"{r.cpu_per_result:.2f} |"
        )
    return "\n".join(lines)


def ratio_table(ours: list[StepResult], theirs: list[StepResult]) -> str:
    """ClearBG/rembg per N: throughput above 1 and latency below 1 favour ClearBG."""
    by_n = {r.clients: r for r in theirs}
    lines = [
        "| N | 200/s ClearBG | 200/s rembg | ratio | p95 s ClearBG | p95 s rembg | ratio | p99 ratio | "
        "p95 ratio (200 only) | peak RSS ratio | CPU s/result ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for a in ours:
        if (b := by_n.get(a.clients)) is None:
            continue
        lines.append(
            f"| {a.clients} | {a.throughput:.2f} | {b.throughput:.2f} | {ratio(a.throughput, b.throughput)} | "
            f"{a.latency(95):.2f} | {b.latency(95):.2f} | {ratio(a.latency(95), b.latency(95))} | "
            f"{ratio(a.latency(99), b.latency(99))} | {ratio(a.latency(95, True), b.latency(95, True))} | "
            f"{ratio(a.peak_rss_mb, b.peak_rss_mb)} | {ratio(a.cpu_per_result, b.cpu_per_result)} |"
        )
    return "\n".join(lines)


def soak_line(soak: Soak) -> str:
    r = soak.result
    return (
        f"| {soak.server} | {soak.seconds:.0f} | {soak.start_mb:.0f} | {soak.peak_mb:.0f} | {soak.end_mb:.0f} | "
        f"{soak.growth_mb:+.0f} | {soak.slope:+.2f} | {r.throughput:.2f} | {r.latency(95):.2f} | {r.answered}/{r.sent} |"
    )


SOAK_HEADER = (
    "| server | soak s | start RSS MB | peak RSS MB | end RSS MB | baseline growth MB | slope MB/min | 200/s | p95 s | answered |\n"
    "|---|---|---|---|---|---|---|---|---|---|"
)


# ----------------------------------------------------------------------------- process trees
def tree_pids(root: int) -> list[int]:
    """`root` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:  # the process just ended
        return ""


def process_rss_kb(pid: int) -> int:
    """A process's resident memory in kB, as its proportional share (PSS): pages a forked worker
    still shares with its parent count once across the tree, not twice. RSS where PSS is unreadable."""
    for line in _read(f"/proc/{pid}/smaps_rollup").splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    text = _read(f"/proc/{pid}/statm")
    return int(text.split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024 if text else 0


def tree_rss_mb(root: int) -> float:
    """Resident memory of `root` and all its descendants, in MB."""
    return sum(process_rss_kb(pid) for pid in tree_pids(root)) * 1024 / 1e6


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU time used so far by `root` and its live descendants."""
    ticks = 0
    for pid in tree_pids(root):
        if text := _read(f"/proc/{pid}/stat"):
            fields = text.rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def available_mb() -> float:
    """The machine's MemAvailable, in MB."""
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1000
    return math.inf


class RssSampler:
    """Samples a process tree's RSS in a thread every `interval` seconds while in a `with` block;
    calls `on_low_memory` once if the machine's available memory falls under `floor_mb`."""

    def __init__(self, root: int, interval: float, floor_mb: float = 0, on_low_memory=None) -> None:
        self.root, self.interval, self.floor_mb, self.on_low_memory = root, interval, floor_mb, on_low_memory
        self.samples: list[tuple[float, float]] = []
        self.low_memory = ""
        self._stop = threading.Event()

    def __enter__(self) -> RssSampler:
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        self.samples.append((time.monotonic() - self._started, tree_rss_mb(self.root)))

    def _run(self) -> None:
        while True:
            self._sample()
            if not self.low_memory and (left := available_mb()) < self.floor_mb:
                self.low_memory = f"stopped: the machine had {left:.0f} MB left with the server at {self.samples[-1][1]:.0f} MB"
                if self.on_low_memory:
                    self.on_low_memory()
            if self._stop.wait(self.interval):
                return

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    @property
    def peak(self) -> float:
        return max((m for _, m in self.samples), default=math.nan)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server process group started in the background, its log in a file; stopped as a group."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log: Path, url: str) -> None:
        self.name, self.url, self.log = name, url, log
        with log.open("w") as out:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def wait_ready(self, probe, timeout: float = 600) -> None:
        """Until `probe()` is true (it is called with no arguments and may raise); stops the server on failure."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.name} exited with {self.process.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if probe():
                    return
            except Exception:  # noqa: BLE001 - not up yet
                pass
            time.sleep(1)
        self.stop()
        raise SystemExit(f"{self.name} did not become ready in {timeout:.0f} s:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


# ----------------------------------------------------------------------------- the two servers
def create_database() -> tuple[str, str]:
    """A fresh, empty PostgreSQL database: (its name, its SQLAlchemy URL)."""
    import psycopg

    name = f"clearbg_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return name, PG_URL.format(name=name)


def drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def clearbg_env(data_dir: Path, database_url: str, model: Path, args) -> dict[str, str]:
    """Production settings, with rate limits far above what the load can reach."""
    tools = ROOT / ".tools" / "node_modules" / ".bin"
    env = {
        **os.environ,
        "CLEARBG_ENV": "production",
        "CLEARBG_SECRET_KEY": secrets.token_urlsafe(48),
        "CLEARBG_PUBLIC_URL": "https://clearbg.bench.invalid",
        "CLEARBG_OPERATOR_NAME": "ClearBG load benchmark",  # production refuses to start without who runs it
        "CLEARBG_OPERATOR_ADDRESS": "1 Bench Street, Testville",
        "CLEARBG_OPERATOR_EMAIL": "operator@bench.invalid",
        "CLEARBG_OPERATOR_PRIVACY_CONTACT": "privacy@bench.invalid",
        "CLEARBG_DATA_DIR": str(data_dir),
        "CLEARBG_DATABASE_URL": database_url,
        "CLEARBG_MODEL_PATH": str(model),
        "CLEARBG_REDIS_URL": "",
        "CLEARBG_SMTP_HOST": "",
        "CLEARBG_API_RATE_LIMIT_PER_KEY": str(10**9),
        "CLEARBG_API_RATE_LIMIT_PER_IP": str(10**9),
        "CLEARBG_LOG_LEVEL": "WARNING",
        "PATH": f"{tools}:{Path(sys.executable).parent}:{os.environ['PATH']}",
        "REFLEX_USE_SYSTEM_BUN": "1",
        "REFLEX_TELEMETRY_ENABLED": "false",
        "REFLEX_CHECK_LATEST_VERSION": "false",
    }
    for name, value in args.set:  # --set inference_workers=1 ...
        env[f"CLEARBG_{name.upper()}"] = value
    return env


def make_account(env: dict[str, str]) -> str:
    """A verified account with a large balance and an API key, through the services; returns the key."""
    os.environ.update({k: v for k, v in env.items() if k.startswith("CLEARBG_")})
    from clearbg_app.clock import utcnow
    from clearbg_app.db import get_engine, session_scope
    from clearbg_app.models import EntryKind
    from clearbg_app.services import accounts, api_keys, credits, security
    from clearbg_app.settings import get_settings

    get_settings.cache_clear()
    get_engine.cache_clear()
    now = utcnow()
    with session_scope() as session:
        user = accounts.sign_up(
            session, email="bench@example.com", display_name="Load benchmark", password=secrets.token_urlsafe(16),
            adult_confirmed=True, policy_accepted=True, ip="127.0.0.1", now=now,
        )  # fmt: skip
        token = security.sign("verify-email", {"u": str(user.id), "e": user.email}, expires_at=now + timedelta(hours=1))
        user = accounts.verify_email(session, token=token, now=now)
        credits.grant(
            session, user_id=user.id, units=credits.to_units(10_000_000), kind=EntryKind.PURCHASE,
            reason="load benchmark", reference=f"bench:{uuid.uuid4()}", now=now,
        )  # fmt: skip
        session.commit()
        _, secret = api_keys.create_key(session, user=user, label="load benchmark", now=now)
    get_engine().dispose()  # no idle connection of ours stays open on the server's database
    return secret


def start_clearbg(work: Path, model: Path, args) -> tuple[Server, dict, str]:
    """Migrate a fresh database, make the account, start `reflex run --env prod --backend-only`."""
    import httpx

    db_name, db_url = create_database()
    try:
        env = clearbg_env(work / "clearbg-data", db_url, model, args)
        subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=ROOT, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        headers = {"X-Api-Key": make_account(env)}
        port = args.port or free_port()
        server = Server(
            "ClearBG",
            [sys.executable, "-m", "reflex", "run", "--env", "prod", "--backend-only", "--backend-port", str(port),
             "--backend-host", "127.0.0.1"],
            env, work / "clearbg.log", f"http://127.0.0.1:{port}",
        )  # fmt: skip
        server.db_name = db_name
        server.wait_ready(lambda: httpx.get(f"{server.url}/api/v1.0/account", headers=headers, timeout=5).status_code == 200)
    except BaseException:
        drop_database(db_name)
        raise
    return server, headers, CLEARBG_PATH


def start_rembg(work: Path, model: Path, args) -> tuple[Server, dict, str]:
    """`rembg s` from PyPI, with the same model file as u2net_custom."""
    import httpx

    python = rembg_python()
    local_model = rembg_model(model)
    port = free_port()
    env = {**os.environ, "U2NET_HOME": str(REMBG_HOME), "OMP_NUM_THREADS": str(os.cpu_count())}
    threads = ["--threads", str(args.rembg_threads)] if args.rembg_threads else []
    server = Server(
        "rembg",
        [str(Path(python).parent / "rembg"), "s", "--host", "127.0.0.1", "--port", str(port), "--no-ui", *threads],
        env, work / "rembg.log", f"http://127.0.0.1:{port}",
    )  # fmt: skip
    server.form = {"model": "u2net_custom"}
    server.query = {"extras": json.dumps({"model_path": str(local_model)})}  # rembg reads extras from the query
    server.wait_ready(lambda: httpx.get(f"{server.url}/api", timeout=5).status_code < 500)
    return server, {}, REMBG_PATH


# ----------------------------------------------------------------------------- load
def load_images(sizes: list[str]) -> list[tuple[str, str, bytes, str]]:
    """(kind, file name, bytes, media type) for every sample photo in every size, interleaved."""
    photos = sorted(p for p in SAMPLES.iterdir() if p.suffix.lower() in MEDIA_TYPES)
    return [(kind, p.name, p.read_bytes(), MEDIA_TYPES[p.suffix.lower()]) for p in photos for kind in sizes]


async def drive(server: Server, headers: dict, path: str, clients: int, seconds: float, images, args) -> StepResult:
    """`clients` closed-loop clients for `seconds`; every request sent is recorded with its outcome."""
    import httpx

    answers: list[Answer] = []
    counter = iter(range(10**12))
    rembg = path == REMBG_PATH
    started = time.monotonic()
    deadline = started + seconds

    async def client_loop(http: httpx.AsyncClient, offset: int) -> None:
        while time.monotonic() < deadline and server.process.poll() is None:
            kind, name, data, media = images[(next(counter) + offset) % len(images)]
            form, query = (server.form, server.query) if rembg else ({"size": kind}, None)
            files = {"file" if rembg else "image_file": (name, data, media)}
            sent = time.monotonic()
            answer = Answer(kind, 0.0)
            answers.append(answer)  # recorded before sending: a request that never returns still counts
            try:
                response = await http.post(path, headers=headers, params=query, data=form, files=files)
                answer.status = response.status_code
            except httpx.HTTPError as error:
                answer.error = type(error).__name__
            answer.seconds = time.monotonic() - sent
            if answer.status in (429, 503):  # as remove.bg asks: wait Retry-After, within the step
                wait = float(response.headers.get("retry-after", "1") or 1)
                await asyncio.sleep(max(0.0, min(wait, deadline - time.monotonic())))

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    timeout = httpx.Timeout(args.timeout, connect=30)
    cpu = tree_cpu_seconds(server.process.pid)
    with RssSampler(server.process.pid, args.rss_interval, args.min_free_mb, server.kill) as rss:
        async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=timeout) as http:
            await asyncio.gather(*(client_loop(http, i * 7) for i in range(clients)))
    elapsed = time.monotonic() - started
    cpu = tree_cpu_seconds(server.process.pid) - cpu
    return StepResult(server.name, clients, elapsed, answers, rss.peak, rss.samples, cpu, rss.low_memory)


@dataclass
class Contestant:
    name: str
    server: Server
    headers: dict
    path: str
    soak: bool


def measure(contestants: list[Contestant], args) -> tuple[dict[str, list[StepResult]], dict[str, Soak]]:
    """Every N for each contestant in turn (so both see the same background load), then the soaks."""
    images = load_images(args.sizes)

    def step(c: Contestant, clients: int, seconds: float) -> StepResult:
        return asyncio.run(drive(c.server, c.headers, c.path, clients, seconds, images, args))

    for c in contestants:
        step(c, 2, args.warm_up)  # untimed: first requests pay for lazy set-up (rembg loads its model)
    results: dict[str, list[StepResult]] = {c.name: [] for c in contestants}
    for clients in args.clients:
        for c in contestants:
            if c.server.process.poll() is not None:
                print(f"  {c.name} N={clients}: skipped, the server is not running", file=sys.stderr)
                continue
            r = step(c, clients, args.duration)
            results[c.name].append(r)
            print(f"  {c.name} N={clients}: {r.throughput:.2f}/s p95 {r.latency(95):.2f} s "
                  f"{r.cpu_per_result:.2f} CPU s/result {dict(r.statuses)} ({machine_load()})", file=sys.stderr)  # fmt: skip
    soaks = {}
    for c in contestants:
        if args.soak and c.soak and c.server.process.poll() is None:
            r = step(c, args.soak_clients, args.soak)
            soaks[c.name] = soak = Soak(c.name, args.soak, r.rss_samples, r)
            OUT.mkdir(exist_ok=True)
            csv = OUT / f"api_soak_{c.name.lower()}.csv"
            csv.write_text("seconds,rss_mb\n" + "".join(f"{t:.1f},{m:.1f}\n" for t, m in soak.samples))
            print(f"  {c.name} soak: {soak.start_mb:.0f} -> {soak.end_mb:.0f} MB, baseline {soak.growth_mb:+.0f} MB, "
                  f"{soak.slope:+.2f} MB/min", file=sys.stderr)  # fmt: skip
    return results, soaks


def machine_load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{os.cpu_count()} cores, load average {one:.1f} / {five:.1f} / {fifteen:.1f} (1/5/15 min)"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", default="1,4,16,64", help="comma-separated numbers of concurrent clients")
    parser.add_argument("--duration", type=float, default=30, help="seconds per number of clients")
    parser.add_argument("--soak", type=float, default=300, help="seconds of sustained load for the RSS soak; 0: none")
    parser.add_argument("--soak-clients", type=int, default=16)
    parser.add_argument("--soak-rembg", action=argparse.BooleanOptionalAction, default=True, help="soak rembg too")
    parser.add_argument("--sizes", default="preview,full", help="the mix of ClearBG sizes, in turn")
    parser.add_argument("--warm-up", type=float, default=5, help="untimed seconds at N=2 before measuring")
    parser.add_argument("--timeout", type=float, default=300, help="per-request timeout, seconds")
    parser.add_argument("--rss-interval", type=float, default=2, help="seconds between RSS samples")
    parser.add_argument("--rembg-threads", type=int, default=0, help="rembg s --threads; 0: rembg's default")
    parser.add_argument("--min-free-mb", type=float, default=1500,
                        help="kill a server whose load leaves the machine less memory than this (MB)")  # fmt: skip
    parser.add_argument("--skip-rembg", action="store_true")
    parser.add_argument("--port", type=int, default=0, help="ClearBG's port; 0: a free one")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a ClearBG setting for the server, e.g. inference_workers=1 (repeatable)")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the database and the work folder")
    args = parser.parse_args(argv)
    args.clients = [int(n) for n in args.clients.split(",") if n.strip()]
    args.sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    args.set = [tuple(item.split("=", 1)) for item in args.set]
    if any(len(item) != 2 for item in args.set):
        parser.error("--set takes NAME=VALUE")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the servers and drop the database on kill too
    from clearbg_app.settings import DEFAULT_MODEL_PATH

    model = Path(os.environ.get("CLEARBG_MODEL_PATH") or DEFAULT_MODEL_PATH)
    work = Path(tempfile.mkdtemp(prefix="clearbg-api-load-"))
    print(f"{machine_load()} at start; model {model}; work folder {work}", file=sys.stderr)
    contestants: list[Contestant] = []
    try:
        starters = [("ClearBG", start_clearbg, True)] + ([] if args.skip_rembg else [("rembg", start_rembg, args.soak_rembg)])
        for name, start, soak in starters:
            server, headers, path = start(work, model, args)
            contestants.append(Contestant(name, server, headers, path, soak))
            print(f"{name} ready at {server.url} (tree RSS {tree_rss_mb(server.process.pid):.0f} MB)", file=sys.stderr)
        results, soaks = measure(contestants, args)
    finally:
        for c in contestants:
            c.server.stop()
            if getattr(c.server, "db_name", None) and not args.keep:
                drop_database(c.server.db_name)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    ours, theirs = results["ClearBG"], results.get("rembg", [])
    our_soak, their_soak = soaks.get("ClearBG"), soaks.get("rembg")
    print(f"\n{machine_load()} at the end; {args.duration:g} s per N; sizes {'/'.join(args.sizes)}; model {model.name}\n")
    print(step_table(ours + theirs))
    if theirs:
        print("\nClearBG / rembg (throughput > 1 and latency < 1 favour ClearBG):\n")
        print(ratio_table(ours, theirs))
    soaks = [s for s in (our_soak, their_soak) if s]
    if soaks:
        print(f"\nRSS soak at N={args.soak_clients} (whole process tree, sampled every {args.rss_interval:g} s):\n")
        print(SOAK_HEADER)
        for soak in soaks:
            print(soak_line(soak))
    checks = check_targets(ours, theirs, our_soak)
    print("\n| target | result | evidence |\n|---|---|---|")
    for target, passed, evidence in checks:
        print(f"| {target} | {'not measured' if passed is None else 'PASS' if passed else 'FAIL'} | {evidence} |")
    return 0 if all(passed is not False for _, passed, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
