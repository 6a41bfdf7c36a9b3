"""What several browser tests do the same way: wait for a mail, sign up through the real forms."""

from __future__ import annotations

from tests.mail import link_in

PASSWORD = "analytical-engine-1843"


def wait_for_mail(smtp, page, count: int):
    for _ in range(50):
        if len(smtp.messages) >= count:
            return smtp.messages[count - 1]
        page.wait_for_timeout(200)
    raise AssertionError(f"expected {count} mails, got {len(smtp.messages)}")


def sign_up_confirmed(page, smtp, app_url: str, email: str) -> None:
    """Sign up (which signs in), and confirm the address from the email, through the real form routes."""
    already = len(smtp.messages)
    origin = {"origin": app_url}
    form = {"email": email, "display_name": "Buyer", "password": PASSWORD, "adult": "on", "accept": "on"}
    assert page.request.post("/auth/signup", form=form, headers=origin).ok
    page.goto(link_in(wait_for_mail(smtp, page, already + 1), "/auth/verify"))
