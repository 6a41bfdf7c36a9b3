"""The policy pages the sign-up form links to are there, and every page's footer links them."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


@pytest.mark.parametrize(("path", "heading"), [("/privacy", "Privacy policy"), ("/terms", "Terms of service")])
def test_policy_pages_render(page, path, heading):
    page.goto(path)
    page.get_by_role("heading", name=heading).wait_for()
    assert "Version 1" in page.content()


def test_footer_links_the_policies(page):
    page.goto("/")
    page.get_by_role("link", name="Privacy policy").click()
    page.get_by_role("heading", name="Privacy policy").wait_for()
