"""`/admin/news`: the product-news composer. Preview first (rendered safely on the server, with the
number of consenting accounts), then send after confirming that number."""

from __future__ import annotations

import reflex as rx

from clearbg_app.db import session_scope
from clearbg_app.services import news
from clearbg_app.services.errors import ServiceError
from clearbg_app.state.admin import AdminBase


class AdminNewsState(AdminBase):
    news_subject: str = ""
    news_body: str = ""
    preview_html: str = ""
    preview_recipients: int = 0

    def _forget(self) -> None:
        self.preview_html, self.preview_recipients = "", 0

    @rx.event
    def load(self):
        if self._admin("load /admin/news") is not None:
            self.admin_notice, self.preview_html = "", ""

    @rx.event
    def preview(self, form: dict):
        admin = self._admin("preview news")
        if admin is None:
            return
        self.news_subject = str(form.get("subject", ""))[: news.MAX_SUBJECT + 1]
        self.news_body = str(form.get("body", ""))[: news.MAX_BODY + 1]
        try:
            with session_scope() as session:
                shown = news.preview(session, admin=admin, subject=self.news_subject, body=self.news_body)
        except ServiceError as error:
            self.preview_html = ""
            self._say(str(error))
            return
        self.preview_html, self.preview_recipients = shown.html, shown.recipients
        self.admin_notice = ""

    @rx.event
    def edit(self):
        if self._admin("edit news") is not None:
            self.preview_html = ""

    @rx.event
    def send(self):
        admin = self._admin("send news")
        if admin is None:
            return
        try:
            with session_scope() as session:
                queued = news.send(session, admin=admin, subject=self.news_subject, body=self.news_body)
        except ServiceError as error:
            self._say(str(error))
            return
        self.preview_html, self.news_subject, self.news_body = "", "", ""
        self._say(f"Queued for {queued} accounts with the product-news consent; the mail worker sends it now.", "info")
