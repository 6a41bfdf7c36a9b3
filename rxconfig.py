import os

import reflex as rx
from reflex.plugins.sitemap import SitemapPlugin

from clearbg_app.settings import get_settings

settings = get_settings()

config = rx.Config(
    app_name="clearbg_app",
    show_built_with_reflex=False,
    telemetry_enabled=False,
    plugins=[rx.plugins.RadixThemesPlugin(theme=rx.theme(accent_color="violet", radius="large"))],
    disable_plugins=[SitemapPlugin],
    # Cookie-authenticated responses are shared only with the site's own origins (CLEARBG_PUBLIC_URL,
    # CLEARBG_CORS_ORIGINS), never echoed to any origin; the public API allows "*" (api/headers.py).
    cors_allowed_origins=settings.site_origins,
    # Each browser tab's state lives in this process's memory, or in Redis when several workers share
    # it; never on disk (Reflex's default, which pickled it into .states/). It expires after a while.
    state_manager_mode="redis" if os.environ.get("REFLEX_REDIS_URL") else "memory",
    redis_token_expiration=settings.state_expiry_minutes * 60,
)
