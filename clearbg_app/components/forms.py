"""Form pieces shared by the account pages. Forms post to `/auth/*` routes (real HTML forms), so the
server can set the HttpOnly session cookie."""

from __future__ import annotations

import reflex as rx
from reflex.utils.format import format_ref
from reflex.vars import VarData
from reflex_components_core.el.elements.base import BaseHTML

from clearbg_app.state.base import SessionState


class NativeForm(BaseHTML):
    """A plain `<form>` the browser submits itself (`rx.el.form` always prevents that)."""

    tag = "form"
    action: rx.Var[str]
    method: rx.Var[str]


native_form = NativeForm.create


def message_callout(message: rx.Var, kind: rx.Var, *, id: str) -> rx.Component:
    """A green "info" or red error message, shown only when there is one."""
    return rx.cond(
        message != "",
        rx.callout(
            message,
            icon=rx.cond(kind == "info", "info", "triangle-alert"),
            color_scheme=rx.cond(kind == "info", "green", "red"),
            id=id,
            width="100%",
        ),
    )


def flash_callout() -> rx.Component:
    """The message the last redirect carried, if any, unless it answers one form (`form_flash`)."""
    return rx.cond(
        SessionState.flash_form == "",
        message_callout(SessionState.flash_message, SessionState.flash_kind, id="flash-message"),
    )


def form_flash(form: str) -> rx.Component:
    """The message that answers the form named `form`, shown beside it."""
    return rx.cond(
        SessionState.flash_form == form,
        message_callout(SessionState.flash_message, SessionState.flash_kind, id=f"{form}-message"),
    )


def back_field(path: str) -> rx.Component:
    """Where the form's route sends the answer back to: the page the form is on."""
    return rx.el.input(type="hidden", name="back", value=path)


def field(label: str, name: str, *, type: str = "text", **props) -> rx.Component:
    return rx.vstack(
        rx.text(label, as_="label", html_for=name, size="2", weight="medium"),
        rx.input(name=name, id=name, type=type, width="100%", size="3", **props),
        spacing="1",
        width="100%",
    )


def checkbox(name: str, *children: rx.Component | str, id: str | None = None, value: str = "on") -> rx.Component:
    """A required checkbox with its label text."""
    return rx.el.label(
        rx.hstack(
            rx.el.input(type="checkbox", name=name, id=id or name, value=value, required=True),
            rx.text(*children, size="2"),
            align="center",
            spacing="2",
        ),
        html_for=id or name,
    )


def post_form(action: str, *children: rx.Component, **props) -> rx.Component:
    """A plain HTML form posting to one of our routes."""
    return native_form(
        rx.vstack(*children, spacing="4", width="100%"),
        action=action,
        method="post",
        width="100%",
        **props,
    )


def submit(label: str, **props) -> rx.Component:
    return rx.button(label, type="submit", size="3", **props)


def revealed_secret(field_id: str, *, placeholder: str = "") -> rx.Component:
    """A read-only field that an event handler fills with a secret through `rx.set_value(field_id, ...)`,
    so the secret reaches the page without ever being a state var; and a button that copies it."""
    value = rx.Var(f"refs['{format_ref(field_id)}']?.current?.value", _var_data=VarData(imports={"$/utils/state": ["refs"]}))
    return rx.hstack(
        rx.el.input(
            id=field_id, read_only=True, default_value="", placeholder=placeholder, auto_complete="off", spell_check=False,
            style={"font_family": "var(--code-font-family)", "font_size": "var(--font-size-2)", "padding": "0.3em 0.5em",
                   "flex": "1", "min_width": "0", "border": "1px solid var(--gray-a7)", "border_radius": "var(--radius-2)"},
        ),  # fmt: skip
        rx.button("Copy", size="1", variant="soft", type="button", on_click=rx.set_clipboard(value)),
        align="center",
        width="100%",
    )
