"""The removal service on SQLite and PostgreSQL: charge and usage row commit together or not at all."""

from __future__ import annotations

import time
import uuid

import pytest
from sqlmodel import select

from clearbg_app.models import ApiUsage, DailyCount
from clearbg_app.models.stats import IMAGES_API
from clearbg_app.services import credits, removal
from tests.conftest import sample_bytes
from tests.factories import balance, give, verified_user

HORSE = sample_bytes("horse.jpg")


@pytest.fixture
def owner(session, clock):
    return verified_user(session, clock)


def test_one_call_charges_and_records_together(session, owner, pool):
    give(session, owner, 100)
    done = removal.remove_background(session, pool=pool, user_id=owner.id, api_key_id=None, data=HORSE, options=removal.RemovalOptions())
    assert (done.units, done.size_name) == (25, "preview") and done.rendered.media_type == "image/png"
    row = session.exec(select(ApiUsage)).one()
    assert (row.credits_units, row.status, row.width) == (25, 200, done.rendered.size[0])
    assert balance(session, owner) == 75 == credits.ledger_sum(session, user_id=owner.id)
    assert session.exec(select(DailyCount.name, DailyCount.count)).all() == [(IMAGES_API, 1)]  # the dashboard's counter


def test_a_failing_usage_write_takes_the_charge_back(session, owner, pool):
    give(session, owner, 100)
    sized = removal.size_for(session, user_id=owner.id, data=HORSE, size="preview")
    job = removal.plan(session, user_id=owner.id, data=HORSE, options=removal.RemovalOptions(), sized=sized)
    rendered = pool.process(job).rendered
    with pytest.raises(Exception, match="(?i)foreign key"):  # no such key: the usage row cannot be written
        removal.settle(session, user_id=owner.id, api_key_id=uuid.uuid4(), options=removal.RemovalOptions(),
                       sized=sized, rendered=rendered, started=time.perf_counter())  # fmt: skip
    assert balance(session, owner) == 100 and session.exec(select(ApiUsage)).all() == []


def test_a_balance_spent_meanwhile_is_refused_at_settling(session, owner, pool):
    give(session, owner, 25)
    sized = removal.size_for(session, user_id=owner.id, data=HORSE, size="preview")
    job = removal.plan(session, user_id=owner.id, data=HORSE, options=removal.RemovalOptions(), sized=sized)
    rendered = pool.process(job).rendered
    settle = dict(user_id=owner.id, api_key_id=None, options=removal.RemovalOptions(), sized=sized, rendered=rendered, started=time.perf_counter())
    removal.settle(session, **settle)
    with pytest.raises(credits.InsufficientCredits):
        removal.settle(session, **settle)
    assert balance(session, owner) == 0 == credits.ledger_sum(session, user_id=owner.id)
    assert len(session.exec(select(ApiUsage)).all()) == 1
