"""Alembic environment: targets `SQLModel.metadata`; the URL comes from settings or the caller."""

from logging.config import fileConfig

from alembic import context
from sqlmodel import SQLModel

import clearbg_app.models  # noqa: F401 - registers every table
from clearbg_app.db import get_engine, make_engine

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = SQLModel.metadata


def _engine():
    """The engine handed in by the caller (tests), a `-x url=...`, or the configured one."""
    if (connection := config.attributes.get("connection")) is not None:
        return connection
    url = context.get_x_argument(as_dictionary=True).get("url")
    return make_engine(url) if url else get_engine()


def run_migrations_online() -> None:
    connectable = _engine()
    if hasattr(connectable, "connect") and not hasattr(connectable, "in_transaction"):
        with connectable.connect() as connection:
            _run(connection)
    else:
        _run(connectable)


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("Offline migrations are not supported; run against a database.")
run_migrations_online()
