"""The end-of-run log scan really finds secrets (so its silence means something)."""

from tests.conftest import leaked_secrets


def test_scan_finds_each_kind_of_secret():
    lines = [
        "mail written to outbox (no SMTP configured): Reset your ClearBG password",
        "GET /auth/verify?token=eyJ1IjoiOGJkNjI3MTctYWIyNi00MjdiLTg1NDUtZTQ0 303",
        "key cbg_live_FWLiaFBlYEVVQ2wD0wXqoxRDbfgal used",
        "cookie: clearbg_session=Zm9vYmFyYmF6cXV4cXV1eHh4eHh4eHh4",
        "login with correct-horse-battery",
        "GET /auth/verify?token=[redacted] 303",
    ]
    assert len(leaked_secrets(lines)) == 4
