"""Command line: `check` verifies the configuration before start-up; `create-admin EMAIL`; `worker`
serves the task queue with its own inference pool."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from clearbg_app.inference import InferenceConfig, InferenceError
from clearbg_app.inference.model import check_providers, verify_configured_models
from clearbg_app.inference.registry import DEFAULT_MODEL, FAST_MODEL
from clearbg_app.settings import get_settings


def check() -> int:
    """One clear line per problem that would stop the app; 0 when it can start."""
    settings = get_settings()
    try:
        check_providers(settings.inference_provider_list)
    except InferenceError as error:
        print(f"clearbg: {error}", file=sys.stderr)
        return 1
    if problems := verify_configured_models(InferenceConfig.from_settings(settings)) + settings.problems():
        for problem in problems:
            print(f"clearbg: {problem}", file=sys.stderr)
        return 1
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    fast = f", fast mode {FAST_MODEL} {settings.fast_model_path}" if settings.enable_fast_mode else ", fast mode off"
    print(f"clearbg: configuration OK (model {DEFAULT_MODEL} {settings.model_path}{fast}, data in {settings.data_dir})")
    return 0


def create_admin(email: str) -> int:
    """Make `email` an admin; a new account gets a password-reset email to choose its password."""
    from clearbg_app.db import session_scope
    from clearbg_app.services import accounts, mail

    try:
        with session_scope() as session:
            user, created = accounts.make_admin(session, email=email)
            if created:
                accounts.request_password_reset(session, email=user.email, ip=None)
    except accounts.AccountError as error:
        print(f"clearbg: {error}", file=sys.stderr)
        return 1
    mail.deliver_due()  # now, rather than when the app's mail worker next looks
    if created:
        print(f"clearbg: created admin {user.email}; a password-reset link was emailed to that address")
    else:
        print(f"clearbg: {user.email} is now an admin")
    return 0


def worker() -> int:
    """A worker process: loads the inference pool and serves the queue (CLEARBG_QUEUE_URL) until
    SIGTERM or SIGINT, then finishes the messages in hand. It always holds the model itself."""
    os.environ["CLEARBG_INFERENCE"] = "local"
    get_settings.cache_clear()
    if (status := check()) != 0:
        return status
    from clearbg_app import log_redaction, metrics  # noqa: PLC0415 - the worker's own start-up
    from clearbg_app.services.removal import default_pool  # noqa: PLC0415
    from clearbg_app.tasks import (
        broker,  # noqa: PLC0415
        worker as queue_worker,  # noqa: PLC0415
    )

    settings = get_settings()
    log_redaction.configure_logging(settings.log_level, settings.log_format)
    log_redaction.install()
    if broker.embedded:
        print("clearbg: the worker serves a shared queue: set CLEARBG_QUEUE_URL=redis://...", file=sys.stderr)
        return 1
    try:
        broker.check()
    except broker.QueueUnavailable as error:
        print(f"clearbg: {error}", file=sys.stderr)
        return 1
    pool = default_pool()
    metrics.watch_pool(pool)
    running = queue_worker.start(pool=pool)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    print(f"clearbg: worker {running.name} serving the queue with {pool.config.worker_count} inference workers", flush=True)
    stop.wait()
    running.stop()
    pool.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clearbg_app")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("check", help="verify the configuration (model file, data directory)")
    admin = commands.add_parser("create-admin", help="give an account the admin role (creating it if needed)")
    admin.add_argument("email")
    commands.add_parser("worker", help="serve the task queue (CLEARBG_QUEUE_URL) with an inference pool")
    args = parser.parse_args(argv)
    if args.command == "create-admin":
        return create_admin(args.email)
    if args.command == "worker":
        return worker()
    return check()


if __name__ == "__main__":
    sys.exit(main())
