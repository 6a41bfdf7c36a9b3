"""The credits ledger on SQLite and PostgreSQL: pricing, charges, grants, reversals, expiry, allowance, races."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlmodel import Session, select

from clearbg_app.clock import as_utc
from clearbg_app.db import get_engine, session_scope
from clearbg_app.models import CreditLot, EntryKind, LedgerEntry, Role
from clearbg_app.services import accounts, credits
from clearbg_app.services.credits import CreditError, InsufficientCredits
from clearbg_app.services.jobs import credits_job
from tests.factories import assert_consistent, sign_up, verified_user
from tests.mail import outbox, token_in


def entries(session, user):
    return session.exec(select(LedgerEntry).where(LedgerEntry.user_id == user.id).order_by(LedgerEntry.created_at)).all()


def buy(session, user, units, clock, reference="order-1", **kwargs):
    entry = credits.grant(
        session, user_id=user.id, units=units, kind=EntryKind.PURCHASE, reason="Pack", reference=reference, now=clock(), **kwargs
    )
    session.commit()
    return entry


# Pricing -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "megapixels", "units"),
    [("web", 0.25, 0), ("web", 0.01, 0), ("api", 0.25, 25), ("web", 0.2501, 100), ("api", 12.0, 100), ("web", 50, 100)],
)
def test_price_for_previews_and_full_resolution(data_dir, channel, megapixels, units):
    assert credits.price_for(channel=channel, megapixels=megapixels) == units


@pytest.mark.parametrize(("channel", "megapixels"), [("email", 1.0), ("web", 0), ("api", -1)])
def test_price_for_refuses_nonsense(data_dir, channel, megapixels):
    with pytest.raises(ValueError):
        credits.price_for(channel=channel, megapixels=megapixels)


def test_credit_amounts_are_exact_units():
    assert [credits.to_units(v) for v in ("0.25", 1, "12.5", Decimal("0.01"))] == [25, 100, 1250, 1]
    assert [credits.format_credits(u) for u in (25, 100, 1250, 0, -75)] == ["0.25", "1", "12.5", "0", "-0.75"]
    for bad in ("0.001", "abc", "1e-5"):
        with pytest.raises(CreditError):
            credits.to_units(bad)


# Charges -----------------------------------------------------------------------------------------------


def test_charges_move_the_balance_exactly_and_once_per_reference(session, clock):
    user = verified_user(session, clock)
    buy(session, user, 100, clock)
    first = credits.charge(session, user_id=user.id, units=25, reason="API preview", reference="img-1", now=clock())
    again = credits.charge(session, user_id=user.id, units=25, reason="API preview", reference="img-1", now=clock())
    assert credits.charge(session, user_id=user.id, units=0, reason="Web preview", reference="img-2") is None
    session.commit()
    assert again.id == first.id and first.balance_after_units == 75
    assert [(e.kind, e.amount_units) for e in entries(session, user)] == [("purchase", 100), ("usage", -25)]
    assert_consistent(session, user, 75)


def test_a_short_balance_is_refused_clearly_and_changes_nothing(session, clock):
    user = verified_user(session, clock)
    buy(session, user, 50, clock)
    with pytest.raises(InsufficientCredits, match=r"^Insufficient credits: this costs 1 credit and your balance is 0.5.$") as refused:
        credits.charge(session, user_id=user.id, units=100, reason="Full resolution", reference="img-1")
    assert (refused.value.needed, refused.value.balance) == (100, 50)
    with pytest.raises(CreditError):
        credits.charge(session, user_id=user.id, units=-5, reason="x", reference="img-2")
    session.rollback()
    assert_consistent(session, user, 50)
    assert len(entries(session, user)) == 1


def test_a_crash_after_the_charge_leaves_no_charge(session, clock):
    user = verified_user(session, clock)
    buy(session, user, 100, clock)
    with pytest.raises(RuntimeError), session_scope() as tx:
        credits.charge(tx, user_id=user.id, units=100, reason="Full resolution", reference="img-1")
        raise RuntimeError("the result could not be written")
    assert_consistent(session, user, 100)
    with session_scope() as tx:  # the retry is charged normally
        credits.charge(tx, user_id=user.id, units=100, reason="Full resolution", reference="img-1")
    assert_consistent(session, user, 0)


def test_charges_spend_the_soonest_expiring_credits_first(session, clock):
    user = verified_user(session, clock)
    buy(session, user, 300, clock, reference="sub-invoice", expires_at=None)
    buy(session, user, 200, clock, reference="late", expires_at=clock() + timedelta(days=30))
    buy(session, user, 100, clock, reference="soon", expires_at=clock() + timedelta(days=1))
    credits.charge(session, user_id=user.id, units=150, reason="Two images", reference="img-1")
    session.commit()
    lots = {lot.units: lot.remaining_units for lot in session.exec(select(CreditLot)).all()}
    assert lots == {100: 0, 200: 150, 300: 300}


def test_admin_adjustments_need_an_admin_and_a_reason(session, clock):
    user = verified_user(session, clock)
    admin = verified_user(session, clock, email="root@example.com", name="Root")
    admin.role = Role.ADMIN
    with pytest.raises(PermissionError):
        credits.adjust(session, user_id=user.id, units=100, reason="Goodwill", admin=user)
    with pytest.raises(CreditError):
        credits.adjust(session, user_id=user.id, units=100, reason="  ", admin=admin)
    credits.adjust(session, user_id=user.id, units=100, reason="Goodwill", admin=admin, now=clock())
    with pytest.raises(InsufficientCredits):
        credits.adjust(session, user_id=user.id, units=-101, reason="Too much", admin=admin)
    credits.adjust(session, user_id=user.id, units=-40, reason="Double grant", admin=admin, now=clock())
    session.commit()
    assert [e.reason for e in entries(session, user)] == ["Goodwill (by root@example.com)", "Double grant (by root@example.com)"]
    assert_consistent(session, user, 60)


# Refunds -----------------------------------------------------------------------------------------------


def test_a_refund_larger_than_the_unspent_credits_records_the_shortfall(session, clock):
    from clearbg_app.services import billing

    user = verified_user(session, clock)
    order = billing.new_order(session, user_id=user.id, plan=billing.plan_by_code(session, "pack_10"), now=clock())
    buy(session, user, 1000, clock, reference=str(order.id), order_id=order.id)
    buy(session, user, 500, clock, reference="other-order")
    credits.charge(session, user_id=user.id, units=700, reason="Images", reference="batch-1")
    reversed_units, shortfall = credits.reverse_unspent(
        session, user_id=user.id, order_id=order.id, units=1000, reason="Refund", reference="re_1", now=clock()
    )
    assert credits.reverse_unspent(session, user_id=user.id, order_id=order.id, units=1000, reason="Refund", reference="re_1") == (0, 0)
    session.commit()
    assert (reversed_units, shortfall) == (300, 700)  # the other order's credits are not touched
    assert entries(session, user)[-1].reason == "Refund; 7 credits already spent"
    assert_consistent(session, user, 500)


# Scheduled: expiry and the monthly allowance -------------------------------------------------------------


def test_bought_credits_expire_after_the_configured_period_unless_spent(session, clock, monkeypatch):
    monkeypatch.setenv("CLEARBG_CREDIT_EXPIRY_DAYS", "10")
    monkeypatch.setenv("CLEARBG_FREE_MONTHLY_CREDITS", "0")
    from clearbg_app.settings import get_settings

    get_settings.cache_clear()
    user = verified_user(session, clock)
    buy(session, user, 500, clock, expires_at=clock() + timedelta(days=get_settings().credit_expiry_days))
    buy(session, user, 200, clock, reference="subscription", expires_at=None)
    credits.charge(session, user_id=user.id, units=120, reason="Images", reference="img-1")
    session.commit()
    clock.advance(days=9, hours=23)
    assert credits_job(clock=clock) == {"allowances_granted": 0, "lots_expired": 0}
    clock.advance(hours=1)
    assert credits_job(clock=clock) == {"allowances_granted": 0, "lots_expired": 1}
    assert credits_job(clock=clock) == {"allowances_granted": 0, "lots_expired": 0}  # idempotent
    assert [(e.kind, e.amount_units, e.reason) for e in entries(session, user)][-1] == ("expiry", -380, "3.8 unused credits expired")
    assert_consistent(session, user, 200)


def test_monthly_allowance_goes_to_verified_accounts_once_and_lapses(session, clock):
    verified = verified_user(session, clock)
    unverified = sign_up(session, clock, email="grace@example.com", name="Grace")
    assert credits_job(clock=clock) == {"allowances_granted": 1, "lots_expired": 0}
    clock.advance(days=3)
    assert credits_job(clock=clock) == {"allowances_granted": 0, "lots_expired": 0}
    assert credits.balance(session, user_id=unverified.id) == 0
    assert_consistent(session, verified, 1250)
    credits.charge(session, user_id=verified.id, units=25, reason="API preview", reference="req-1")
    session.commit()
    clock.advance(days=30)  # 2027-02-03: January's rest lapses, February's arrives
    assert credits_job(clock=clock) == {"allowances_granted": 1, "lots_expired": 1}
    kinds = [(e.kind, e.amount_units, as_utc(e.created_at).month) for e in entries(session, verified)]
    assert kinds[-2:] in ([("monthly_allowance", 1250, 2), ("expiry", -1225, 2)], [("expiry", -1225, 2), ("monthly_allowance", 1250, 2)])
    assert_consistent(session, verified, 1250)


def confirm(session, clock, data_dir, user):
    """Open the newest verification link, as the user does."""
    token = token_in([m for m in outbox(data_dir, clock) if m["To"] == user.email][-1], "/auth/verify")
    return accounts.verify_email(session, token=token, now=clock())


def test_confirming_the_email_grants_the_month_allowance_at_once_and_never_twice(session, clock, data_dir):
    user = sign_up(session, clock)
    assert credits.balance(session, user_id=user.id) == 0
    confirm(session, clock, data_dir, user)
    assert_consistent(session, user, 1250)  # no waiting for the hourly job
    status = credits.allowance_status(session, user_id=user.id, now=clock())
    assert (status["granted"], status["remaining_units"]) == (True, 1250)
    assert status["lapses_at"] == credits.next_month_start(clock())
    credits.charge(session, user_id=user.id, units=100, reason="Full resolution", reference="img-1")
    session.commit()
    assert credits_job(clock=clock) == {"allowances_granted": 0, "lots_expired": 0}  # the job sees it was given
    confirm(session, clock, data_dir, user)  # the link opened again
    assert_consistent(session, user, 1150)
    clock.advance(days=31)  # next month: the job gives the next one, and this month's rest lapses
    assert credits_job(clock=clock) == {"allowances_granted": 1, "lots_expired": 1}
    assert_consistent(session, user, 1250)
    assert len([e for e in entries(session, user) if e.kind == "monthly_allowance"]) == 2


def test_a_google_sign_up_with_a_verified_address_starts_with_the_allowance(session, clock):
    identity = accounts.ExternalIdentity(provider="google", subject="g-1", email="ada@example.com", email_verified=True, name="Ada")
    user = accounts.sign_in_with_identity(session, identity=identity, adult_confirmed=True, policy_accepted=True, now=clock())
    assert_consistent(session, user, 1250)
    accounts.sign_in_with_identity(session, identity=identity, adult_confirmed=False, policy_accepted=False, now=clock())
    assert_consistent(session, user, 1250)


def test_no_allowance_when_the_setting_is_zero(session, clock, data_dir, monkeypatch):
    monkeypatch.setenv("CLEARBG_FREE_MONTHLY_CREDITS", "0")
    from clearbg_app.settings import get_settings

    get_settings.cache_clear()
    user = sign_up(session, clock)
    confirm(session, clock, data_dir, user)
    assert credits.balance(session, user_id=user.id) == 0
    assert credits.allowance_status(session, user_id=user.id, now=clock())["monthly_units"] == 0


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_confirmation_racing_the_hourly_job_grants_once(session, clock, data_dir):
    users = [sign_up(session, clock, email=f"user{n}@example.com") for n in range(8)]
    tokens = [token_in([m for m in outbox(data_dir, clock) if m["To"] == u.email][-1], "/auth/verify") for u in users]
    start = threading.Barrier(len(users) + 1)

    def confirm_one(token):
        start.wait()
        with Session(get_engine(), expire_on_commit=False) as own:
            accounts.verify_email(own, token=token, now=clock())

    def run_job():
        start.wait()
        for _ in range(5):
            credits_job(clock=clock)

    threads = [threading.Thread(target=confirm_one, args=(t,)) for t in tokens] + [threading.Thread(target=run_job)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for user in users:
        assert_consistent(session, user, 1250)


# Concurrency (PostgreSQL row lock) -------------------------------------------------------------------------


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_fifty_concurrent_charges_against_ten_credits(session, clock):
    user = verified_user(session, clock)
    buy(session, user, 1000, clock)
    start = threading.Barrier(50)
    outcomes: list[str] = []

    def one_request(number: int) -> None:
        start.wait()
        try:
            with Session(get_engine(), expire_on_commit=False) as own, own.begin():
                credits.charge(own, user_id=user.id, units=100, reason="Full resolution", reference=f"img-{number}")
            outcomes.append("charged")
        except InsufficientCredits:
            outcomes.append("refused")

    threads = [threading.Thread(target=one_request, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (outcomes.count("charged"), outcomes.count("refused")) == (10, 40)
    assert_consistent(session, user, 0)
    assert len([e for e in entries(session, user) if e.kind == "usage"]) == 10


def test_the_ledger_pages_newest_first(session, clock):
    user = verified_user(session, clock)
    buy(session, user, 5000, clock)
    for number in range(24):
        clock.advance(minutes=1)
        credits.charge(session, user_id=user.id, units=25, reason=f"Image {number}", reference=f"img-{number}", now=clock())
    session.commit()
    first, total = credits.ledger_page(session, user_id=user.id, page=1)
    last, _ = credits.ledger_page(session, user_id=user.id, page=2)
    assert total == 25 and len(first) == 20 and len(last) == 5
    assert first[0].reason == "Image 23" and last[-1].kind == "purchase"
    assert credits.ledger_page(session, user_id=user.id, page=0)[0] == first  # bad page numbers clamp
    assert credits.ledger_page(session, user_id=user.id, page=9) == ([], 25)


def test_a_reference_belongs_to_one_account(session, clock):
    ada = verified_user(session, clock)
    grace = verified_user(session, clock, email="grace@example.com", name="Grace")
    for user in (ada, grace):
        buy(session, user, 100, clock, reference=f"order-{user.id}")
    credits.charge(session, user_id=ada.id, units=100, reason="Full resolution", reference="img-1")
    with pytest.raises(CreditError, match="another account"):
        credits.charge(session, user_id=grace.id, units=100, reason="Full resolution", reference="img-1")
    session.commit()
    assert_consistent(session, grace, 100)
