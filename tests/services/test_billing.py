"""Stripe payments on SQLite and PostgreSQL: the official client against localstripe and our loopback
Checkout server, webhooks signed with Stripe's scheme and posted to the real route."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from datetime import timedelta
from urllib.parse import parse_qsl, urlsplit

import pytest
from sqlmodel import select
from starlette.testclient import TestClient

from clearbg_app.api import build_api
from clearbg_app.clock import utcnow
from clearbg_app.http.flash import read_flash
from clearbg_app.models import AccountDeletion, AuditEvent, CreditAccount, CreditLot, LedgerEntry, Order, StripeEvent
from clearbg_app.services import accounts, billing, credits, deletion, personal_data
from clearbg_app.services.billing import BillingError, BillingUnavailable
from clearbg_app.services.deletion_lock import DeletionPending
from clearbg_app.services.errors import NotFound
from clearbg_app.services.jobs import anonymize_accounts_job
from clearbg_app.settings import get_settings
from tests.factories import PASSWORD, assert_consistent, sign_up, verified_user
from tests.stripe_fakes import SECRET_KEY, WEBHOOK_SECRET, FakeStripe, event, sign, stripe_on_loopback


@pytest.fixture(scope="module")
def loopback() -> FakeStripe:
    with stripe_on_loopback() as fake:
        yield fake


@pytest.fixture
def stripe_fake(loopback, db_url, monkeypatch) -> FakeStripe:
    monkeypatch.setenv("CLEARBG_STRIPE_SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("CLEARBG_STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)
    monkeypatch.setenv("CLEARBG_STRIPE_API_BASE", loopback.url)
    monkeypatch.setenv("CLEARBG_PUBLIC_URL", "https://clearbg.example")
    get_settings.cache_clear()
    loopback.requests.clear()
    loopback.sent_events.clear()
    return loopback


@pytest.fixture
def api() -> TestClient:
    return TestClient(build_api(), base_url="https://clearbg.example")


def post_event(api: TestClient, event_: dict, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None, header: str | None = "sign"):
    payload = json.dumps(event_).encode()
    headers = {"Content-Type": "application/json"}
    if header == "sign":
        headers["Stripe-Signature"] = sign(payload, secret, timestamp)
    elif header is not None:
        headers["Stripe-Signature"] = header
    return api.post("/api/stripe/webhook", content=payload, headers=headers)


def deliver(api, events):
    outcomes = []
    for item in events:
        response = post_event(api, item)
        assert response.status_code == 200, response.text
        outcomes.append(response.json()["outcome"])
    return outcomes


def checkout(session, user, code="pack_10"):
    order, url = billing.start_checkout(session, user=user, plan_code=code)
    return order, url.rsplit("/", 1)[1]


def fresh(session, model, key):
    return session.get(model, key, populate_existing=True)


# Checkout and packs --------------------------------------------------------------------------------------


def test_buying_a_pack_through_checkout_and_the_signed_webhook(session, clock, stripe_fake, api):
    user = verified_user(session, clock)
    order, checkout_id = checkout(session, user)
    sent = next(params for _, path, params in stripe_fake.requests if path == "/v1/checkout/sessions")
    account = fresh(session, CreditAccount, user.id)
    assert stripe_fake.ls.get(f"/v1/customers/{account.stripe_customer_id}").json()["email"] == "ada@example.com"
    assert sent["mode"] == "payment" and sent["customer"] == account.stripe_customer_id
    assert sent["metadata"]["order_id"] == str(order.id) == sent["payment_intent_data"]["metadata"]["order_id"]
    assert sent["success_url"] == f"https://clearbg.example/credits?order={order.id}"
    assert sent["line_items"] == [{"price": billing.plan_by_code(session, "pack_10").stripe_price_id, "quantity": "1"}]
    assert fresh(session, Order, order.id).status == "pending" and credits.balance(session, user_id=user.id) == 0

    completed = stripe_fake.pay(checkout_id)
    assert deliver(api, completed) == ["paid: 10 credits granted"]
    assert deliver(api, completed) == ["duplicate"]  # Stripe retries: nothing more
    order = fresh(session, Order, order.id)
    assert order.status == "paid" and order.payment_intent_id.startswith("pi_")
    assert_consistent(session, user, 1000)
    [lot] = session.exec(select(CreditLot).where(CreditLot.user_id == user.id)).all()
    assert (lot.expires_at - order.paid_at).days == get_settings().credit_expiry_days
    with pytest.raises(NotFound, match="no receipt"):  # localstripe's charges carry no receipt_url
        billing.receipt_url(session, user_id=user.id, order_id=order.id)

    # A second Checkout for the same plan reuses the customer and the price.
    checkout(session, user)
    assert [path for _, path, _ in stripe_fake.requests].count("/v1/prices") == 1


def test_refunds_take_back_unspent_credits_and_record_the_shortfall(session, clock, stripe_fake, api):
    user = verified_user(session, clock)
    order, checkout_id = checkout(session, user)
    deliver(api, stripe_fake.pay(checkout_id))
    intent = fresh(session, Order, order.id).payment_intent_id
    with session.begin_nested():
        credits.charge(session, user_id=user.id, units=700, reason="Seven images", reference="batch-7")
    session.commit()

    half = stripe_fake.refund(intent, amount=245)  # half the money: 5 credits, 3 of them unspent
    assert deliver(api, [half]) == ["refunded 2.45: 3 credits reversed, 2 already spent"]
    assert fresh(session, Order, order.id).status == "partially_refunded"
    assert_consistent(session, user, 0)  # a refund never makes the balance negative
    rest = stripe_fake.refund(intent)
    assert deliver(api, [rest, half]) == ["refunded 4.90: 3 credits reversed, 7 already spent", "duplicate"]
    order = fresh(session, Order, order.id)
    assert (order.status, order.refunded_cents, order.reversed_units, order.refund_shortfall_units) == ("refunded", 490, 300, 700)
    assert_consistent(session, user, 0)


def test_a_refund_before_the_completion_and_delayed_payments(session, clock, stripe_fake, api):
    user = verified_user(session, clock)
    order, checkout_id = checkout(session, user)
    completed, succeeded = stripe_fake.pay(checkout_id, delayed=True)
    assert deliver(api, [completed]) == ["processing: waiting for a delayed payment"]
    assert credits.balance(session, user_id=user.id) == 0
    intent = fresh(session, Order, order.id).payment_intent_id
    refund = stripe_fake.refund(intent)
    # The refund overtakes the payment's success: the order is found through the intent's metadata in Stripe.
    assert deliver(api, [refund])[0].startswith("refunded 4.90")
    assert deliver(api, [succeeded]) == ["paid: 10 credits granted"]
    assert fresh(session, Order, order.id).status == "refunded"
    assert_consistent(session, user, 0)

    failing, checkout_id = checkout(session, user)
    completed, _ = stripe_fake.pay(checkout_id, delayed=True)
    failed = event("checkout.session.async_payment_failed", completed["data"]["object"])
    assert deliver(api, [completed, failed]) == ["processing: waiting for a delayed payment", "failed: no credits granted"]
    late_success = event("checkout.session.async_payment_succeeded", completed["data"]["object"])
    assert deliver(api, [late_success]) == ["already failed"]
    assert fresh(session, Order, failing.id).status == "failed"
    assert_consistent(session, user, 0)


def test_completions_for_unknown_or_mismatched_orders_grant_nothing(session, clock, stripe_fake, api):
    user = verified_user(session, clock)
    order, checkout_id = checkout(session, user)
    [completed] = stripe_fake.pay(checkout_id)
    obj = completed["data"]["object"]
    unknown = event("checkout.session.completed", {**obj, "metadata": {"order_id": str(uuid.uuid4())}, "client_reference_id": None})
    garbage = event("checkout.session.completed", {**obj, "metadata": {"order_id": "'; drop table"}, "client_reference_id": "x"})
    other_session = event("checkout.session.completed", {**obj, "id": "cs_test_someone_else"})
    assert deliver(api, [unknown, garbage, other_session]) == ["unknown order"] * 3
    assert deliver(api, [event("customer.created", {"id": "cus_1"})]) == ["ignored: not an event ClearBG uses"]
    assert credits.balance(session, user_id=user.id) == 0
    assert fresh(session, Order, order.id).status == "pending"
    assert len(session.exec(select(StripeEvent)).all()) == 4  # every event is on record with its outcome


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_concurrent_deliveries_of_one_event_grant_once(session, clock, stripe_fake):
    from clearbg_app.services.billing import apply_event

    user = verified_user(session, clock)
    _, checkout_id = checkout(session, user)
    [completed] = stripe_fake.pay(checkout_id)
    start = threading.Barrier(8)
    outcomes = []

    def deliver_once():
        start.wait()
        outcomes.append(apply_event(completed))

    threads = [threading.Thread(target=deliver_once) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["duplicate"] * 7 + ["paid: 10 credits granted"]
    assert_consistent(session, user, 1000)


# Subscriptions -------------------------------------------------------------------------------------------


def test_subscription_credits_roll_over_until_the_subscription_ends(session, clock, stripe_fake, api):
    user = verified_user(session, clock)
    order, checkout_id = checkout(session, user, code="monthly_100")
    sent = next(params for _, path, params in stripe_fake.requests if path == "/v1/checkout/sessions")
    assert sent["mode"] == "subscription" and sent["subscription_data"]["metadata"]["order_id"] == str(order.id)
    completed, first_invoice = stripe_fake.pay(checkout_id)
    # Out of order: the first invoice lands before the Checkout completion.
    assert deliver(api, [first_invoice, completed, first_invoice]) == ["paid: 100 credits granted", "subscription paid", "duplicate"]
    account = fresh(session, CreditAccount, user.id)
    assert account.subscription_status == "active" and account.subscription_id.startswith("sub_")
    renewal = stripe_fake.invoice(stripe_fake.sessions[checkout_id], metadata={})
    assert deliver(api, [event("invoice.paid", renewal)]) == ["paid: 100 credits granted"]
    session.expire_all()
    orders = session.exec(select(Order).where(Order.user_id == user.id)).all()
    assert sorted(str(o.invoice_id) for o in orders) == sorted([first_invoice["data"]["object"]["id"], renewal["id"]])
    assert all(lot.expires_at is None for lot in session.exec(select(CreditLot)).all())
    assert_consistent(session, user, 20_000)

    deleted = event("customer.subscription.deleted", {"id": account.subscription_id, "object": "subscription", "customer": account.stripe_customer_id, "status": "canceled"})
    assert deliver(api, [deleted])[0].startswith("subscription ended: 2 credit lots now expire on")
    assert fresh(session, CreditAccount, user.id).subscription_status == "canceled"
    session.expire_all()
    assert all(lot.expires_at is not None for lot in session.exec(select(CreditLot)).all())
    stranger = event("invoice.paid", {**renewal, "id": "in_stranger", "customer": "cus_nobody"})
    assert deliver(api, [stranger]) == ["unknown customer"]
    renewal_order = session.exec(select(Order).where(Order.invoice_id == renewal["id"])).one()
    assert billing.receipt_url(session, user_id=user.id, order_id=renewal_order.id) == renewal["hosted_invoice_url"]
    with pytest.raises(NotFound):  # someone else's order
        billing.receipt_url(session, user_id=uuid.uuid4(), order_id=renewal_order.id)
    # Rolled-over credits now expire like bought ones.
    assert credits.expire_due(session, now=utcnow() + timedelta(days=get_settings().credit_expiry_days - 1)) == 0
    assert credits.expire_due(session, now=utcnow() + timedelta(days=get_settings().credit_expiry_days + 1)) == 2
    session.commit()
    assert_consistent(session, user, 0)


# Bad input -------------------------------------------------------------------------------------------------


def test_bad_or_missing_signatures_are_refused_and_change_nothing(session, clock, stripe_fake, api):
    user = verified_user(session, clock)
    order, checkout_id = checkout(session, user)
    [completed] = stripe_fake.pay(checkout_id)
    payload = json.dumps(completed).encode()
    tampered = api.post("/api/stripe/webhook", content=payload.replace(b'"paid"', b'"PAID"'),
                        headers={"Stripe-Signature": sign(payload)})  # fmt: skip
    assert tampered.status_code == 400
    for kwargs in ({"header": None}, {"header": "garbage"}, {"secret": "whsec_wrong"}, {"timestamp": int(time.time()) - 3600}):
        response = post_event(api, completed, **kwargs)
        assert (response.status_code, response.text) == (400, "Invalid signature.")
    not_json = api.post("/api/stripe/webhook", content=b"not json", headers={"Stripe-Signature": sign(b"not json")})
    assert not_json.status_code == 400
    assert session.exec(select(StripeEvent)).all() == [] and session.exec(select(LedgerEntry)).all() == []
    assert fresh(session, Order, order.id).status == "pending"


MALFORMED_EVENTS = [
    {"id": 123, "type": "invoice.paid", "data": {"object": {"id": "in_1"}}},
    {"id": "evt_1", "type": ["invoice.paid"], "data": {"object": {"id": "in_1"}}},
    {"id": "evt_1", "type": "invoice.paid", "data": {"object": "in_1"}},
    {"id": "evt_1", "type": "invoice.paid", "data": []},
    {"id": "evt_1", "type": "invoice.paid"},
    {"id": "evt_\u0000", "type": "invoice.paid", "data": {"object": {"id": "in_1"}}},
    {"id": "evt_" + "x" * 300, "type": "invoice.paid", "data": {"object": {"id": "in_1"}}},
    {"id": "evt_1", "type": "invoice.paid", "created": "yesterday", "data": {"object": {"id": "in_1"}}},
    {"id": "evt_1", "type": "invoice.paid", "created": 10**20, "data": {"object": {"id": "in_1"}}},
    {"id": "evt_1", "type": "invoice.paid", "data": {"object": {"customer": "cus_1"}}},
    {"id": "evt_1", "type": "invoice.paid", "data": {"object": {"id": ["in_1"], "customer": "cus_1"}}},
    {"id": "evt_1", "type": "invoice.paid", "data": {"object": {"id": "in_1", "customer": ["cus_1"]}}},
    {"id": "evt_1", "type": "invoice.paid", "data": {"object": {"id": "in_1", "customer": "cus_1", "amount_paid": "lots"}}},
    {"id": "evt_1", "type": "invoice.paid", "data": {"object": {"id": "in_1", "parent": {"subscription_details": {"metadata": "x"}}}}},
    {"id": "evt_1", "type": "invoice.paid", "data": {"object": {"id": "in_1", "lines": {"data": [{"pricing": {"price_details": 7}}]}}}},
    {"id": "evt_1", "type": "checkout.session.completed", "data": {"object": {"id": "cs_1", "metadata": "order"}}},
    {"id": "evt_1", "type": "checkout.session.completed", "data": {"object": {"id": "cs_1", "payment_intent": {"id": 5}}}},
    {"id": "evt_1", "type": "charge.refunded", "data": {"object": {"id": "ch_1", "payment_intent": "pi_1", "amount_refunded": 2**40}}},
    {"id": "evt_1", "type": "charge.refunded", "data": {"object": {"id": "ch_1", "invoice": {"id": "in_" + "x" * 100}}}},
    {"id": "evt_1", "type": "customer.subscription.deleted", "data": {"object": {"customer": "cus_1"}}},
]


@pytest.mark.parametrize("malformed", MALFORMED_EVENTS, ids=lambda event_: json.dumps(event_)[:60])
def test_signed_but_malformed_events_are_refused_not_server_errors(session, clock, stripe_fake, api, malformed):
    """Correctly signed, but not shaped as the Stripe objects ClearBG reads: 400, nothing applied (these were 500s)."""
    user = verified_user(session, clock)
    credits.locked_account(session, user_id=user.id).stripe_customer_id = "cus_1"
    session.commit()
    response = post_event(api, malformed)
    assert (response.status_code, response.text.split(":")[0]) == (400, "Malformed event"), response.text
    assert session.exec(select(StripeEvent)).all() == [] and session.exec(select(LedgerEntry)).all() == []


def test_signed_events_that_are_not_json_objects_or_nested_too_deeply(stripe_fake, api):
    for payload in (b"[" * 100_000 + b"]" * 100_000, b'"evt"', b"\xff\xfe", b'{"id": 1e999999}'):
        response = api.post("/api/stripe/webhook", content=payload, headers={"Stripe-Signature": sign(payload)})
        assert response.status_code == 400, (payload[:20], response.text)


def test_an_event_over_the_size_limit_is_refused_before_it_is_read(stripe_fake, api):
    big = {**event("invoice.paid", {"id": "in_1"}), "padding": "x" * 600_000}
    assert post_event(api, big).status_code == 413
    refused = api.post("/api/stripe/webhook", content=b"{}", headers={"Content-Length": str(10**9), "Stripe-Signature": sign(b"{}")})
    assert (refused.status_code, refused.text) == (413, "Event too large.")


def test_purchases_need_a_confirmed_account_a_real_plan_and_stripe(session, clock, stripe_fake, monkeypatch):
    unverified = sign_up(session, clock)
    with pytest.raises(BillingError, match="Confirm your email address"):
        billing.start_checkout(session, user=unverified, plan_code="pack_10")
    user = verified_user(session, clock, email="grace@example.com", name="Grace")
    for code in ("pack_3", "", "'; --"):
        with pytest.raises(NotFound):
            billing.start_checkout(session, user=user, plan_code=code)
    with pytest.raises(BillingError, match="no subscription or saved card"):
        billing.portal_url(session, user=user)
    checkout(session, user)
    assert billing.portal_url(session, user=user).startswith(f"{stripe_fake.url}/portal/cus_")
    assert session.exec(select(Order)).all()[0].user_id == user.id  # the refused attempts left no orders

    monkeypatch.setenv("CLEARBG_STRIPE_SECRET_KEY", "")
    get_settings.cache_clear()
    with pytest.raises(BillingUnavailable, match="Payments are not set up"):
        billing.start_checkout(session, user=user, plan_code="pack_10")


def test_stripe_down_marks_the_order_failed(session, clock, stripe_fake, monkeypatch):
    user = verified_user(session, clock)
    checkout(session, user)  # customer and price exist now
    monkeypatch.setenv("CLEARBG_STRIPE_API_BASE", "http://127.0.0.1:9")  # nothing listens there
    get_settings.cache_clear()
    with pytest.raises(BillingError, match="could not be reached; nothing was charged"):
        billing.start_checkout(session, user=user, plan_code="pack_10")
    statuses = sorted(o.status for o in session.exec(select(Order)).all())
    assert statuses == ["failed", "pending"]


# Routes ------------------------------------------------------------------------------------------------------


def signed_in_client(session, user, api: TestClient) -> TestClient:
    token = accounts.start_session(session, user=user, user_agent="pytest", ip="127.0.0.1")
    session.commit()
    api.cookies.set("clearbg_session", token)
    return api


def test_checkout_and_portal_routes(session, clock, stripe_fake, api, monkeypatch):
    user = verified_user(session, clock)
    browser = signed_in_client(session, user, api)
    origin = {"origin": "https://clearbg.example"}
    assert browser.post("/billing/checkout", data={"plan": "pack_10"}).status_code == 403  # not from our page
    response = browser.post("/billing/checkout", data={"plan": "pack_50"}, headers=origin, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith(f"{stripe_fake.url}/pay/cs_test_")
    response = browser.post("/billing/checkout", data={"plan": "nope"}, headers=origin, follow_redirects=False)
    assert response.headers["location"].startswith("/pricing?m=")
    response = browser.post("/billing/portal", headers=origin, follow_redirects=False)
    assert response.headers["location"].startswith(f"{stripe_fake.url}/portal/")
    [order] = session.exec(select(Order)).all()
    assert browser.get(f"/billing/receipt/{order.id}", follow_redirects=False).headers["location"].startswith("/credits?m=")
    assert browser.get("/billing/receipt/not-a-uuid").status_code == 404

    browser.cookies.clear()
    response = browser.post("/billing/checkout", data={"plan": "pack_10"}, headers=origin, follow_redirects=False)
    assert response.headers["location"] == "/login?next=%2Fpricing"

    monkeypatch.setenv("CLEARBG_STRIPE_WEBHOOK_SECRET", "")
    get_settings.cache_clear()
    assert post_event(api, event("invoice.paid", {"id": "in_1"})).status_code == 503
    signed_in_client(session, user, browser)
    response = browser.post("/billing/checkout", data={"plan": "pack_10"}, headers=origin, follow_redirects=False)
    location = urlsplit(response.headers["location"])
    assert location.path == "/pricing" and "Payments are not set up" in read_flash(dict(parse_qsl(location.query)))["msg"]
    assert len(session.exec(select(Order)).all()) == 1


# Account deletion ends the subscription ------------------------------------------------------------------


def subscribed_user(session, clock, stripe_fake, api):
    user = verified_user(session, clock)
    _, checkout_id = checkout(session, user, code="monthly_100")
    deliver(api, stripe_fake.pay(checkout_id))
    account = fresh(session, CreditAccount, user.id)
    assert account.subscription_status == "active"
    assert stripe_fake.subscriptions[account.subscription_id]["status"] == "active"
    return user, account.subscription_id


def cancels(stripe_fake) -> list[str]:
    return [path for method, path, _ in stripe_fake.requests if method == "DELETE"]


def test_deleting_the_account_cancels_its_subscription_at_stripe(session, clock, store, stripe_fake, api):
    user, subscription_id = subscribed_user(session, clock, stripe_fake, api)
    deletion.request_deletion(session, user=user, store=store, password=PASSWORD, now=clock())
    assert cancels(stripe_fake) == [f"/v1/subscriptions/{subscription_id}"]
    assert stripe_fake.subscriptions[subscription_id]["status"] == "canceled"
    assert fresh(session, CreditAccount, user.id).subscription_status == "canceled"
    [record] = session.exec(select(AuditEvent).where(AuditEvent.action == "subscription.cancelled")).all()
    assert record.after == {"subscription": subscription_id, "why": "account deletion"}
    assert record.target_id == personal_data.pseudonym(user.id)
    session.expire_all()
    assert all(lot.expires_at is not None for lot in session.exec(select(CreditLot)).all())  # as when it ends at Stripe
    # Stripe's own event about it changes nothing more, and neither do later job runs.
    [deleted] = stripe_fake.sent_events
    assert deliver(api, [deleted])[0].startswith("subscription ended")
    clock.advance(days=get_settings().deletion_grace_days + 1)
    counts = anonymize_accounts_job(clock=clock)
    assert (counts["accounts_anonymized"], counts["subscriptions_cancelled"], counts["subscriptions_not_yet_cancelled"]) == (1, 0, 0)
    assert len(cancels(stripe_fake)) == 1


def test_with_stripe_down_the_deletion_stands_and_the_job_cancels_later_once(session, clock, store, stripe_fake, api, monkeypatch):
    user, subscription_id = subscribed_user(session, clock, stripe_fake, api)
    browser = signed_in_client(session, user, api)
    monkeypatch.setenv("CLEARBG_STRIPE_API_BASE", "http://127.0.0.1:9")  # nothing listens there
    get_settings.cache_clear()
    response = browser.post("/privacy/delete", data={"password": PASSWORD, "confirm": "on"},
                            headers={"origin": "https://clearbg.example"}, follow_redirects=False)  # fmt: skip
    assert response.status_code == 303 and urlsplit(response.headers["location"]).path == "/login", response.text
    assert "will be deleted on" in read_flash(dict(parse_qsl(urlsplit(response.headers["location"]).query)))["msg"]
    session.expire_all()
    assert session.exec(select(AccountDeletion).where(AccountDeletion.user_id == user.id)).one().completed_at is None
    assert fresh(session, CreditAccount, user.id).subscription_status == "active"  # not cancelled yet: tried again
    assert stripe_fake.subscriptions[subscription_id]["status"] == "active" and cancels(stripe_fake) == []
    clock.advance(hours=1)
    assert anonymize_accounts_job(clock=clock)["subscriptions_not_yet_cancelled"] == 1  # still down

    monkeypatch.setenv("CLEARBG_STRIPE_API_BASE", stripe_fake.url)  # Stripe is back
    get_settings.cache_clear()
    clock.advance(hours=1)
    counts = anonymize_accounts_job(clock=clock)
    assert (counts["subscriptions_cancelled"], counts["subscriptions_not_yet_cancelled"], counts["accounts_anonymized"]) == (1, 0, 0)
    assert stripe_fake.subscriptions[subscription_id]["status"] == "canceled"
    assert fresh(session, CreditAccount, user.id).subscription_status == "canceled"
    clock.advance(days=get_settings().deletion_grace_days)
    assert anonymize_accounts_job(clock=clock)["subscriptions_cancelled"] == 0
    assert cancels(stripe_fake) == [f"/v1/subscriptions/{subscription_id}"]  # cancelled once


def test_a_subscription_already_over_at_stripe_or_unknown_to_it_is_recorded_as_canceled(session, clock, store, stripe_fake, api):
    user, subscription_id = subscribed_user(session, clock, stripe_fake, api)
    assert stripe_fake.cancel_subscription(subscription_id)[0] == 200  # ended at Stripe; its event never arrived
    assert stripe_fake.cancel_subscription(subscription_id)[0] == 404  # Stripe: "No such subscription"
    assert billing.cancel_subscription(session, user_id=user.id, now=clock()) == subscription_id
    session.commit()
    assert fresh(session, CreditAccount, user.id).subscription_status == "canceled"
    assert billing.cancel_subscription(session, user_id=user.id, now=clock()) is None  # nothing active: no call
    assert len(cancels(stripe_fake)) == 1  # the 404 answer, then a retrieve saying "canceled"
    # Stale or odd ids on record: Stripe knows no such subscription, so nothing can be charged: recorded as over.
    for stale in ("sub_unknown", "sub_../../v1/customers", "sub_%00"):
        account = fresh(session, CreditAccount, user.id)
        account.subscription_id, account.subscription_status = stale, "active"
        session.add(account)
        session.commit()
        assert billing.cancel_subscription(session, user_id=user.id, now=clock()) == stale  # unknown to Stripe: over


def test_a_deletion_cancelled_before_stripe_could_be_reached_keeps_the_subscription(session, clock, store, stripe_fake, api, monkeypatch):
    user, subscription_id = subscribed_user(session, clock, stripe_fake, api)
    monkeypatch.setenv("CLEARBG_STRIPE_SECRET_KEY", "")  # payments switched off meanwhile: the cancel cannot happen now
    get_settings.cache_clear()
    deletion.request_deletion(session, user=user, store=store, password=PASSWORD, now=clock())
    with pytest.raises(DeletionPending) as pending:
        accounts.authenticate(session, email=user.email, password=PASSWORD, ip="127.0.0.1", now=clock())
    deletion.cancel_deletion(session, token=pending.value.token, now=clock())
    monkeypatch.setenv("CLEARBG_STRIPE_SECRET_KEY", SECRET_KEY)
    get_settings.cache_clear()
    assert anonymize_accounts_job(clock=clock)["subscriptions_cancelled"] == 0
    assert stripe_fake.subscriptions[subscription_id]["status"] == "active" and cancels(stripe_fake) == []


def test_a_stripe_that_never_answers_holds_the_deletion_seconds_not_minutes(session, clock, store, stripe_fake, api, monkeypatch):
    """Stripe reachable but silent: the request's one try gives up after a few seconds; the job cancels later."""
    user, subscription_id = subscribed_user(session, clock, stripe_fake, api)
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        monkeypatch.setenv("CLEARBG_STRIPE_API_BASE", f"http://127.0.0.1:{silent.getsockname()[1]}")
        get_settings.cache_clear()
        started = time.monotonic()
        deletion.request_deletion(session, user=user, store=store, password=PASSWORD, now=clock())
        waited = time.monotonic() - started
    assert deletion.CANCEL_WHILE_WAITING_SECONDS <= waited < deletion.CANCEL_WHILE_WAITING_SECONDS + 3, waited
    assert fresh(session, CreditAccount, user.id).subscription_status == "active"
    monkeypatch.setenv("CLEARBG_STRIPE_API_BASE", stripe_fake.url)
    get_settings.cache_clear()
    assert anonymize_accounts_job(clock=clock)["subscriptions_cancelled"] == 1
    assert stripe_fake.subscriptions[subscription_id]["status"] == "canceled"
