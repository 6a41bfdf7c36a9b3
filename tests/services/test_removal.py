"""The one paid-removal path (`removal.remove_paid`) on SQLite and PostgreSQL: price, balance check,
the pool's work and the charge, with the usage row, the stored result and the caller's rows committed
together or not at all, whichever channel asks."""

from __future__ import annotations

import asyncio
import threading
import uuid

import pytest
from sqlmodel import select

from clearbg_app.db import session_scope
from clearbg_app.inference import ImageDecodeError
from clearbg_app.models import ApiUsage, DailyCount, LedgerEntry
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
    done = removal.remove_paid(session, pool=pool, payer=removal.Payer(user_id=owner.id), data=HORSE, options=removal.RemovalOptions())
    assert (done.units, done.size_name) == (25, "preview") and done.rendered.media_type == "image/png"
    row = session.exec(select(ApiUsage)).one()
    assert (row.credits_units, row.status, row.width, row.channel) == (25, 200, done.rendered.size[0], "api")
    assert balance(session, owner) == 75 == credits.ledger_sum(session, user_id=owner.id)
    assert session.exec(select(DailyCount.name, DailyCount.count)).all() == [(IMAGES_API, 1)]  # the dashboard's counter


def test_the_async_variant_for_routes_charges_the_same(session, owner, pool):
    give(session, owner, 100)
    payer = removal.Payer(user_id=owner.id)
    sized = removal.size_for(session, user_id=owner.id, data=HORSE, size="preview")
    session.rollback()
    done = asyncio.run(removal.remove_paid_async(pool=pool, payer=payer, data=HORSE, options=removal.RemovalOptions(), sized=sized))
    assert done.units == 25 and balance(session, owner) == 75 and len(session.exec(select(ApiUsage)).all()) == 1


def test_the_web_channel_prices_for_the_page_and_writes_no_usage_row(session, owner, pool, store):
    give(session, owner, 100)
    payer = removal.Payer(user_id=owner.id, channel="web", reference="image:x:full", lane="web")
    kept: list[tuple[str | None, int]] = []
    done = removal.remove_paid(session, pool=pool, payer=payer, data=HORSE, options=removal.RemovalOptions(size="full", format="png"),
                               store=store, on_result=lambda key, rendered, units: kept.append((key, units)))  # fmt: skip
    assert kept == [(done.result_key, 100)] and store.get(done.result_key or "") == done.rendered.content
    entry = session.exec(select(LedgerEntry).where(LedgerEntry.reference == "image:x:full")).one()
    assert entry.reason == f"Full resolution {done.rendered.size[0]}x{done.rendered.size[1]}" and entry.amount_units == -100
    assert session.exec(select(ApiUsage)).all() == [] and balance(session, owner) == 0
    again = removal.remove_paid(session, pool=pool, payer=payer, data=HORSE, options=removal.RemovalOptions(size="full", format="png"))
    assert again.units == 100 and balance(session, owner) == 0  # the same reference is never charged twice


def test_a_failing_usage_write_takes_the_charge_and_the_stored_result_back(session, owner, pool, store):
    give(session, owner, 100)
    before = set(store.keys())
    payer = removal.Payer(user_id=owner.id, api_key_id=uuid.uuid4())  # no such key: the usage row cannot be written
    with pytest.raises(Exception, match="(?i)foreign key"):
        removal.remove_paid(session, pool=pool, payer=payer, data=HORSE, options=removal.RemovalOptions(), store=store)
    assert balance(session, owner) == 100 and session.exec(select(ApiUsage)).all() == [] and set(store.keys()) == before


def test_a_failing_caller_row_takes_everything_back(session, owner, pool, store):
    give(session, owner, 100)
    before = set(store.keys())

    def broken(key, rendered, units):
        raise RuntimeError("the caller's row could not be written")

    with pytest.raises(RuntimeError):
        removal.remove_paid(session, pool=pool, payer=removal.Payer(user_id=owner.id), data=HORSE,
                            options=removal.RemovalOptions(), store=store, on_result=broken)  # fmt: skip
    assert balance(session, owner) == 100 and session.exec(select(ApiUsage)).all() == [] and set(store.keys()) == before


class SpendingPool:
    """A pool that, while it works, lets another request spend the balance."""

    def __init__(self, pool, spend) -> None:
        self._pool, self._spend = pool, spend

    def process(self, job, timeout=None, *, lane="api"):
        self._spend()
        return self._pool.process(job, lane=lane)


def test_a_balance_spent_meanwhile_is_refused_at_the_charge(session, owner, pool):
    give(session, owner, 25)

    def spend():
        with session_scope() as other:
            credits.charge(other, user_id=owner.id, units=25, reason="elsewhere", reference="other-request")
            other.commit()

    with pytest.raises(credits.InsufficientCredits):
        removal.remove_paid(session, pool=SpendingPool(pool, spend), payer=removal.Payer(user_id=owner.id), data=HORSE,
                            options=removal.RemovalOptions())  # fmt: skip
    assert balance(session, owner) == 0 == credits.ledger_sum(session, user_id=owner.id)
    assert session.exec(select(ApiUsage)).all() == []


def test_a_short_balance_is_refused_before_any_work(session, owner, pool):
    give(session, owner, 10)

    class NoWork:
        def process(self, *args, **kwargs):
            raise AssertionError("the pool must not be called")

    with pytest.raises(credits.InsufficientCredits):
        removal.remove_paid(session, pool=NoWork(), payer=removal.Payer(user_id=owner.id), data=HORSE, options=removal.RemovalOptions())
    assert balance(session, owner) == 10


def test_a_batch_job_waiting_for_an_idle_worker_stops_uncharged(session, owner, pool):
    give(session, owner, 100)

    class AllBusy:
        def submit_if_idle(self, job):
            return None

    stop = threading.Event()
    stop.set()
    payer = removal.Payer(user_id=owner.id, reference="batch-item:1", lane="batch")
    with pytest.raises(removal.Interrupted):
        removal.remove_paid(session, pool=AllBusy(), payer=payer, data=HORSE, options=removal.RemovalOptions(), stop=stop)
    assert balance(session, owner) == 100 and session.exec(select(ApiUsage)).all() == []


def test_an_unreadable_image_is_refused_uncharged(session, owner, pool):
    give(session, owner, 100)

    for data in (b"", b"not an image", HORSE[:200]):
        with pytest.raises(ImageDecodeError):
            removal.remove_paid(session, pool=pool, payer=removal.Payer(user_id=owner.id), data=data, options=removal.RemovalOptions())
    assert balance(session, owner) == 100
