"""Policy text on a page. The HTML comes from `services.policies.render_markdown` on the server (raw
HTML escaped, only http(s)/mailto/relative links), never from `rx.markdown`, whose default
`rehype-raw` plugin would pass raw HTML from the document through to the page."""

from __future__ import annotations

import reflex as rx


def rendered_markdown(html: rx.Var, **props) -> rx.Component:
    """Server-rendered, already safe HTML of a Markdown document."""
    return rx.box(rx.html(html), width="100%", class_name="legal-document", **props)
