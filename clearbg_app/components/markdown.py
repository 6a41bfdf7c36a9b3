"""Policy text on a page. The HTML comes from `services.policies.render_markdown` on the server (raw
HTML escaped, only http(s)/mailto/relative links), never from `rx.markdown`, whose default
`rehype-raw` plugin would pass raw HTML from the document through to the page."""

from __future__ import annotations

import reflex as rx

DOCUMENT_STYLE = {
    "& h1": {"font_size": "2em", "font_weight": "700", "margin": "0.2em 0 0.6em"},
    "& h2": {"font_size": "1.4em", "font_weight": "700", "margin": "1.4em 0 0.5em"},
    "& h3": {"font_size": "1.15em", "font_weight": "600", "margin": "1.2em 0 0.4em"},
    "& p, & ul, & ol, & table": {"margin": "0 0 0.9em", "line_height": "1.6"},
    "& ul, & ol": {"padding_left": "1.5em"},
    "& ul": {"list_style": "disc"},
    "& ol": {"list_style": "decimal"},
    "& a": {"color": "var(--accent-11)", "text_decoration": "underline"},
    "& code": {"font_family": "monospace", "background": "var(--gray-3)", "padding": "0 0.25em", "border_radius": "4px"},
    "& table": {"border_collapse": "collapse", "width": "100%", "font_size": "0.9em"},
    "& th, & td": {"border": "1px solid var(--gray-6)", "padding": "0.4em 0.6em", "text_align": "left", "vertical_align": "top"},
    "& th": {"background": "var(--gray-2)"},
}


def rendered_markdown(html: rx.Var, **props) -> rx.Component:
    """Server-rendered, already safe HTML of a Markdown document."""
    return rx.box(rx.html(html), width="100%", class_name="legal-document", style=DOCUMENT_STYLE, **props)
