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
