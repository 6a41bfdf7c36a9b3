"""Counts in sentences read right: "within 1 hour", "1 day", "0.25 credit"."""

from __future__ import annotations

import pytest

from clearbg_app.wording import plural
from tests.factories import verified_user
from tests.mail import outbox


@pytest.mark.parametrize(
    ("count", "word", "expected"),
    [(1, "hour", "1 hour"), (2, "hour", "2 hours"), (0, "order", "0 orders"), ("0.25", "credit", "0.25 credit"),
     ("1", "credit", "1 credit"), ("12.5", "credit", "12.5 credits"), (1, "more day", "1 more day")],
)  # fmt: skip
def test_plural(count, word, expected):
    assert plural(count, word) == expected


def test_the_reset_mail_says_within_1_hour(session, clock, data_dir):
    from clearbg_app.services import accounts

    verified_user(session, clock)
    accounts.request_password_reset(session, email="ada@example.com", ip="127.0.0.1", now=clock())
    body = outbox(data_dir, clock)[-1].get_content()
    assert "within 1 hour:" in body and "1 hours" not in body


def test_retention_texts_with_settings_of_one(session, monkeypatch):
    from clearbg_app.components.layout import retention_notice
    from clearbg_app.services import personal_data
    from clearbg_app.settings import get_settings

    for name in ("BATCH_RETENTION_HOURS", "HISTORY_RETENTION_DAYS", "EXPORT_LINK_DAYS", "SESSION_DAYS", "REQUEST_LOG_IP_DAYS"):
        monkeypatch.setenv(f"CLEARBG_{name}", "1")
    get_settings.cache_clear()
    texts = [retention_notice(), *(entry.retention(get_settings()) for entry in personal_data.REGISTRY)]
    assert "(1 hour for batches, 1 day if" in texts[0]
    assert not any(word in text for text in texts for word in (" 1 hours", " 1 days", " 1 minutes"))
