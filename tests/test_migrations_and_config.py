"""Alembic's schema matches the models on both databases; configuration fails clearly."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel, select

from clearbg_app.db import get_engine, make_engine
from clearbg_app.models import AuthSession, RequestLog
from clearbg_app.services import accounts, policies
from tests.factories import alembic, run_check


def test_migrations_match_the_models(db_url):
    with get_engine().connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), SQLModel.metadata)
    assert diff == []


def test_missing_model_stops_start_up_with_one_clear_line(tmp_path):
    result = run_check({"CLEARBG_MODEL_PATH": str(tmp_path / "nowhere.onnx")}, tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"clearbg: Model file not found at {tmp_path / 'nowhere.onnx'}; put the model there"
        " or set CLEARBG_MODEL_PATH to its path."
    ]


def test_corrupt_or_misshapen_model_stops_start_up_with_one_clear_line(tmp_path):
    from tests.inference.conftest import tiny_onnx_model

    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07not a model at all")
    result = run_check({"CLEARBG_FAST_MODEL_PATH": str(corrupt)}, tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"clearbg: The model file {corrupt} is not a valid ONNX model (DecodeError); check CLEARBG_FAST_MODEL_PATH."
    ]
    tiny = tiny_onnx_model(tmp_path / "tiny.onnx", side=8)
    result = run_check({"CLEARBG_MODEL_PATH": str(tiny)}, tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"clearbg: The model file {tiny} takes input 1x3x8x8, but u2net needs 1x3x320x320; check CLEARBG_MODEL_PATH."
    ]


def test_default_configuration_is_ready(tmp_path):
    result = run_check({}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "configuration OK (model u2net " in result.stdout and "fast mode u2netp " in result.stdout


def test_0012_cuts_stored_user_agents_down_and_publishes_policy_1_1(db_url, session):
    """Rows written before the upgrade keep only the browser family and version too."""
    alembic(db_url, command.downgrade, "0011")
    user = accounts.sign_up(session, email="ada@example.com", display_name="Ada", password="correct-horse-battery",
                            adult_confirmed=True, policy_accepted=True, ip="127.0.0.1")  # fmt: skip
    full = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
    now = datetime.now(UTC)
    session.add(AuthSession(token_hash="h" * 64, user_id=user.id, expires_at=now + timedelta(days=1), user_agent=full))
    session.add_all(RequestLog(at=now, method="GET", path="/", status=200, latency_ms=1, user_agent=agent, ip_prefix="")
                    for agent in (full, "curl/8.5.0", ""))  # fmt: skip
    session.commit()
    alembic(db_url, command.upgrade, "head")
    session.expire_all()
    assert sorted(row.user_agent for row in session.exec(select(RequestLog)).all()) == ["Firefox 128", "curl 8", "other"]
    assert [row.user_agent for row in session.exec(select(AuthSession)).all()] == ["Firefox 128 on Windows"]
    assert "1.1" in [version.label for version in policies.published_versions(session, kind="privacy")]


def test_0014_adds_the_image_edits_and_keeps_existing_images(db_url, session):
    """Images stored before the upgrade have no edits and no background photo; a downgrade drops both."""
    from clearbg_app.models import ProcessedImage

    alembic(db_url, command.downgrade, "0012")
    now = datetime.now(UTC)
    with make_engine(db_url).begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO processed_image (id, status, original_filename, original_key, original_content_type, original_bytes,"
            " width, height, charged_units, created_at, expires_at) VALUES ('0123456789abcdef0123456789abcdef', 'done', 'a.jpg',"
            " 'k.jpg', 'image/jpeg', 10, 4, 3, 0, :now, :now)".replace(":now", f"'{now.isoformat()}'")
        )
    alembic(db_url, command.upgrade, "head")
    (image,) = session.exec(select(ProcessedImage)).all()
    assert (image.original_key, image.edit_strokes, image.background_key) == ("k.jpg", None, None)
    image.edit_strokes = '[{"mode":"erase"}]'
    session.add(image)
    session.commit()
    session.close()
    alembic(db_url, command.downgrade, "0012")
    alembic(db_url, command.upgrade, "head")


def test_0013_adds_the_model_to_api_usage(db_url, session):
    """Rows from before the upgrade do not know their model (""); new rows record it."""
    from clearbg_app.models import ApiUsage

    alembic(db_url, command.downgrade, "0012")
    user = accounts.sign_up(session, email="bo@example.com", display_name="Bo", password="correct-horse-battery",
                            adult_confirmed=True, policy_accepted=True, ip="127.0.0.1")  # fmt: skip
    session.commit()
    columns = ("id", "at", "user_id", "size", "credits_units", "latency_ms", "status")
    types = (sa.Uuid, sa.DateTime(timezone=True), sa.Uuid, sa.String, sa.BigInteger, sa.Integer, sa.Integer)
    before = sa.table("api_usage", *(sa.column(name, kind) for name, kind in zip(columns, types, strict=True)))  # 0012's columns
    with get_engine().begin() as connection:
        connection.execute(before.insert().values(id=uuid.uuid4(), at=datetime.now(UTC), user_id=user.id, size="preview",
                                                  credits_units=0, latency_ms=5, status=200))  # fmt: skip
    alembic(db_url, command.upgrade, "head")
    session.expire_all()
    assert [row.model for row in session.exec(select(ApiUsage)).all()] == [""]


def test_0015_marks_keyless_batches_as_web_and_old_usage_as_api(db_url, session):
    """Batches written before 0015 without a key came from the batch page; usage rows were API calls."""
    from sqlalchemy import text

    alembic(db_url, command.downgrade, "0012")
    user = accounts.sign_up(session, email="ada@example.com", display_name="Ada", password="correct-horse-battery",
                            adult_confirmed=True, policy_accepted=True, ip="127.0.0.1")  # fmt: skip
    now = datetime.now(UTC)
    as_id = (lambda value: value.hex) if db_url.startswith("sqlite") else str  # how each stores a UUID
    for _ in range(2):
        session.execute(
            text("INSERT INTO batch (id, user_id, status, params, webhook_status, webhook_attempts, created_at, expires_at) "
                 "VALUES (:id, :user, 'done', '{}', 'none', 0, :now, :now)"),  # fmt: skip
            {"id": as_id(uuid.uuid4()), "user": as_id(user.id), "now": now},
        )
    session.execute(
        text("INSERT INTO api_usage (id, at, user_id, size, credits_units, latency_ms, status) VALUES (:id, :now, :user, 'preview', 25, 1, 200)"),
        {"id": as_id(uuid.uuid4()), "user": as_id(user.id), "now": now},
    )
    session.commit()
    alembic(db_url, command.upgrade, "head")
    session.expire_all()
    from clearbg_app.models import ApiUsage, Batch

    assert [batch.channel for batch in session.exec(select(Batch)).all()] == ["web", "web"]
    [usage] = session.exec(select(ApiUsage)).all()
    assert (usage.channel, usage.reference) == ("api", None)
