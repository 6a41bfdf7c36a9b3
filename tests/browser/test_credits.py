"""A confirmed user buys a credit pack: pricing page, Checkout (the loopback server pays and redirects
back), the order shown pending until the signed webhook lands, then the new balance without a reload."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS
from tests.browser.factories import sign_up_confirmed

pytestmark = pytest.mark.browser


def test_buy_a_pack_and_see_the_balance_change(page, smtp, app_url, stripe_loopback):
    page.goto("/pricing")
    expect(page.locator("#buy-pack_10")).to_be_disabled()  # signed out: nobody to charge
    sign_up_confirmed(page, smtp, app_url, "buyer@example.com")

    page.goto("/pricing")
    expect(page.locator("#header-balance")).to_have_text("12.5 credits")  # the free allowance, granted on confirming
    expect(page.locator("#buy-pack_10")).to_be_enabled()
    page.screenshot(path=str(ARTIFACTS / "pricing.png"), full_page=True)
    page.click("#buy-pack_10")

    page.wait_for_url(re.compile(r"/credits/?\?order="))
    expect(page.locator("#order-status")).to_contain_text("pending")  # the webhook comes 3 s later
    expect(page.locator("#order-status")).to_contain_text("Thank you! 10 credits were added", timeout=30_000)
    expect(page.locator("#credits-balance")).to_have_text("22.5 credits")
    expect(page.locator("#header-balance")).to_have_text("22.5 credits")
    expect(page.locator("#orders")).to_contain_text("paid")
    expect(page.locator("#ledger")).to_contain_text("Credit pack")
    page.screenshot(path=str(ARTIFACTS / "credits.png"), full_page=True)
    assert [status for event, status in stripe_loopback.deliveries] == [200]
    assert stripe_loopback.deliveries[0][0]["type"] == "checkout.session.completed"
