"""The policy pages the sign-up form links to are there, and every page's footer links them."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS

pytestmark = pytest.mark.browser


@pytest.mark.parametrize(("path", "heading"), [("/privacy", "Privacy policy"), ("/terms", "Terms of service")])
def test_policy_pages_render(page, path, heading):
    page.goto(path)
    page.get_by_role("heading", name=heading).wait_for()
    expect(page.locator("#policy-version")).to_have_text(re.compile(r"Version \d+"))  # another test may publish v2
    expect(page.locator("#policy-effective")).to_contain_text("in effect since")


def test_footer_links_the_policies(page):
    page.goto("/")
    page.get_by_role("link", name="Privacy policy").click()
    page.get_by_role("heading", name="Privacy policy").wait_for()


def test_api_documentation_pages(page):
    page.goto("/docs/api")
    page.get_by_role("heading", name="ClearBG API").wait_for()
    assert "X-Api-Key" in page.content() and "/api/v1.0/removebg" in page.content()
    page.screenshot(path=str(ARTIFACTS / "api-docs.png"), full_page=True)
    reference = page.request.get("/api/docs")
    assert reference.ok and "removebg" in reference.text()
    spec = page.request.get("/api/openapi.json").json()
    assert spec["openapi"].startswith("3.") and "/v1.0/removebg" in "".join(spec["paths"])
