"""What `/credits`, the full-resolution refusal and the deletion form tell a new user, on both databases."""

from __future__ import annotations

from clearbg_app.models import CreditAccount
from clearbg_app.services import credits
from clearbg_app.state.credits import allowance_text
from clearbg_app.state.privacy import deletion_losses
from clearbg_app.state.remove import insufficient_message
from tests.factories import sign_up, verified_user


def test_credits_page_tells_the_allowance_and_when_it_lapses(session, clock, monkeypatch):
    unconfirmed = sign_up(session, clock, email="new@example.com")
    assert allowance_text(unconfirmed.id, verified=False) == "Confirm your email address to get 12.5 free credits every month."
    confirmed = verified_user(session, clock)
    assert allowance_text(confirmed.id, verified=True).startswith("Free allowance: 12.5 credits a month; the next arrive on")
    credits.grant_allowance(session, user_id=confirmed.id)
    credits.charge(session, user_id=confirmed.id, units=100, reason="Full resolution", reference="img-1")
    session.commit()
    text = allowance_text(confirmed.id, verified=True)
    assert "11.5 of this month's are left; they lapse on " in text and text.endswith("and the next 12.5 arrive then.")
    monkeypatch.setenv("CLEARBG_FREE_MONTHLY_CREDITS", "0")
    from clearbg_app.settings import get_settings

    get_settings.cache_clear()
    assert allowance_text(confirmed.id, verified=True) == ""


def test_the_refusal_says_when_the_next_free_credits_come(data_dir, monkeypatch):
    message = insufficient_message(credits.InsufficientCredits(needed=100, balance=0))
    assert message.startswith("Insufficient credits: this costs 1 credit and your balance is 0. Your next 12.5 free credits arrive on ")
    monkeypatch.setenv("CLEARBG_FREE_MONTHLY_CREDITS", "0")
    from clearbg_app.settings import get_settings

    get_settings.cache_clear()
    assert insufficient_message(credits.InsufficientCredits(needed=100, balance=0)).endswith("your balance is 0.")


def test_the_deletion_form_names_the_credits_lost_and_the_subscription(session, clock):
    user = verified_user(session, clock)
    assert deletion_losses(session, user_id=user.id) == []
    credits.grant_allowance(session, user_id=user.id)
    session.commit()
    assert deletion_losses(session, user_id=user.id) == ["Your 12.5 credits will be lost; they are not refunded."]
    account = session.get(CreditAccount, user.id)
    account.subscription_status, account.subscription_id = "active", "sub_1"
    session.add(account)
    session.commit()
    subscription = deletion_losses(session, user_id=user.id)[1]
    assert subscription.startswith("Your active subscription ends when you confirm: we cancel it at Stripe at once")
    assert "cancel it first" not in subscription


def test_with_purchases_off_credits_says_so_and_disables_buying(session, clock, monkeypatch):
    """`/credits` shows "Buy credits" disabled and the purchases-off line when `payments_enabled` is false."""
    from clearbg_app.http.cookies import SESSION_COOKIE
    from clearbg_app.services import accounts
    from clearbg_app.settings import get_settings
    from clearbg_app.state.credits import CreditsState
    from tests.factories import state_for

    user = verified_user(session, clock)
    cookie = f"{SESSION_COOKIE}={accounts.start_session(session, user=user, user_agent='t', ip=None)}"
    session.commit()
    for secret, enabled in (("", False), ("sk_test_x", True)):
        monkeypatch.setenv("CLEARBG_STRIPE_SECRET_KEY", secret)
        monkeypatch.setenv("CLEARBG_STRIPE_WEBHOOK_SECRET", secret and "whsec_x")
        get_settings.cache_clear()
        state = state_for(CreditsState, cookie, path="/credits")
        assert type(state).event_handlers["load"].fn(state) is None  # signed in: no redirect
        assert state.payments_enabled is enabled and state.header_balance_text.endswith("credits")
    from clearbg_app.pages.credits import credits_page

    rendered = str(credits_page())
    assert "buy-credits-disabled" in rendered and "purchases-off" in rendered and "Buying credits is switched off" in rendered


def test_batch_lines_and_retry_only_for_what_a_retry_can_fix(data_dir):
    from clearbg_app.state.batch import BatchState, cost_line
    from tests.factories import state_for

    assert cost_line(2, 25, 0) == "2 images x 0.25 credit = 0.5 credit; your balance is 0 credits."
    assert cost_line(1, 100, 1250) == "1 image x 1 credit = 1 credit; your balance is 12.5 credits."
    state = state_for(BatchState, path="/")
    state.balance_units = 1250
    assert (state.each_units, state.price_line) == (25, "Each image costs up to 0.25 credit; your balance is 12.5 credits, enough for 50 images.")
    state.size_label = "Full resolution (1 credit each)"
    assert (state.each_units, state.each_label, state.balance_label) == (100, "1 credit", "12.5 credits")
    items = [
        {"id": str(n), "filename": f"{code}.jpg", "status": "failed", "errors": [{"code": code, "detail": "why"}]}
        for n, code in enumerate(("server_busy", "insufficient_credits", "unreadable_image", "image_too_large"))
    ]
    state._show({"id": "b1", "status": "done", "credits_charged": "0", "items": items})
    assert [item.retryable for item in state.items] == ["yes", "yes", "", ""] and state.retryable_count == 2
