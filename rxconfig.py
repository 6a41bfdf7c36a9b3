import reflex as rx
from reflex.plugins.sitemap import SitemapPlugin

config = rx.Config(
    app_name="clearbg_app",
    show_built_with_reflex=False,
    telemetry_enabled=False,
    plugins=[rx.plugins.RadixThemesPlugin(theme=rx.theme(accent_color="violet", radius="large"))],
    disable_plugins=[SitemapPlugin],
)
