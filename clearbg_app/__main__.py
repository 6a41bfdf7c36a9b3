"""Command line: `check` verifies the configuration before start-up; `create-admin EMAIL`."""

from __future__ import annotations

import argparse
import sys

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clearbg_app")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("check", help="verify the configuration (model file, data directory)")
    admin = commands.add_parser("create-admin", help="give an account the admin role (creating it if needed)")
    admin.add_argument("email")
    args = parser.parse_args(argv)
    if args.command == "create-admin":
        return create_admin(args.email)
    return check()


if __name__ == "__main__":
    sys.exit(main())
