"""Wiring only: the Reflex app, its pages, the HTTP routes beside it, and lifespan tasks."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from reflex.config import get_config
from reflex.constants import StateManagerMode
from reflex.istate.manager import reset_disk_state_manager

from clearbg_app import log_redaction
from clearbg_app.api import ClearBGApp, build_api
from clearbg_app.api.request_log import writer as request_log_writer
from clearbg_app.api.v1 import error_fields
from clearbg_app.inference import ModelNotFound, check_model_file
from clearbg_app.jobs import build_scheduler
from clearbg_app.pages import account, admin, admin_policies, auth, history, index, legal, pricing, privacy_center
from clearbg_app.pages.api_docs import api_docs
from clearbg_app.pages.credits import credits_page
from clearbg_app.services.batches import BatchWorker
from clearbg_app.services.mail import MailWorker
from clearbg_app.services.removal import default_pool
from clearbg_app.settings import get_settings
from clearbg_app.state.account import AccountState
from clearbg_app.state.admin import AdminState, AuditLogState
from clearbg_app.state.base import SessionState
from clearbg_app.state.credits import CreditsState, PricingState
from clearbg_app.state.policies import AdminPoliciesState, AdminSubprocessorsState, LegalState, SubprocessorsState
from clearbg_app.state.privacy import HistoryState, PrivacyState

log = logging.getLogger("clearbg")


@contextlib.asynccontextmanager
async def background_services():
    """Load the inference pool (its model serves the page and the API) before the first request, and
    run the scheduled jobs, the batch worker and the mail worker while the app is up."""
    log_redaction.install()  # the servers have set up their log handlers by now
    pool = await asyncio.to_thread(default_pool)
    scheduler = build_scheduler()
    scheduler.start()
    batch_worker = BatchWorker(pool=pool, describe_error=error_fields)
    await asyncio.to_thread(batch_worker.start)
    mail_worker = MailWorker()
    mail_worker.start()
    log.info("ClearBG ready: model loaded, scheduler started")
    try:
        yield
    finally:
        scheduler.shutdown(wait=False)
        await asyncio.to_thread(mail_worker.stop)
        await asyncio.to_thread(batch_worker.stop)
        await asyncio.to_thread(pool.close)
        request_log_writer.flush()


settings = get_settings()
log_redaction.configure_logging(settings.log_level)
try:
    check_model_file(settings.model_path)
except ModelNotFound as missing:
    raise SystemExit(f"clearbg: {missing}") from None
if problems := settings.problems():
    raise SystemExit("clearbg: " + " ".join(problems))
if get_config().state_manager_mode == StateManagerMode.DISK:
    raise SystemExit("clearbg: REFLEX_STATE_MANAGER_MODE=disk would write every tab's state to disk; "
                     "use the default (memory) or REFLEX_REDIS_URL.")  # fmt: skip
reset_disk_state_manager()  # the .states/ files of earlier versions held cookies and personal data

app = ClearBGApp(api_transformer=build_api())
on_load = SessionState.load_session
app.add_page(index.index, route="/", title="ClearBG: remove image backgrounds", on_load=on_load)
app.add_page(auth.signup, route="/signup", title="Sign up · ClearBG", on_load=on_load)
app.add_page(auth.login, route="/login", title="Sign in · ClearBG", on_load=on_load)
app.add_page(auth.forgot_password, route="/forgot-password", title="Reset your password · ClearBG", on_load=on_load)
app.add_page(auth.reset_password, route="/reset-password", title="New password · ClearBG", on_load=on_load)
app.add_page(account.account, route="/account", title="Your account · ClearBG", on_load=[on_load, AccountState.load])
app.add_page(admin.admin, route="/admin", title="Admin · ClearBG", on_load=[on_load, AdminState.load])
app.add_page(admin.audit_log, route="/admin/audit", title="Audit log · ClearBG", on_load=[on_load, AuditLogState.load])
app.add_page(admin_policies.admin_policies, route="/admin/policies", title="Policies · ClearBG", on_load=[on_load, AdminPoliciesState.load])
app.add_page(admin_policies.admin_subprocessors, route="/admin/subprocessors", title="Subprocessors · ClearBG",
             on_load=[on_load, AdminSubprocessorsState.load])  # fmt: skip
for kind, title in (("privacy", "Privacy policy"), ("terms", "Terms of service")):
    legal_load = [on_load, LegalState.load]
    app.add_page(legal.document, route=f"/{kind}", title=f"{title} · ClearBG", on_load=legal_load)
    app.add_page(legal.versions, route=f"/{kind}/versions", title=f"{title}: versions · ClearBG", on_load=legal_load)
    app.add_page(legal.document, route=f"/{kind}/versions/[label]", title=f"{title} · ClearBG", on_load=legal_load)
app.add_page(legal.subprocessors, route="/subprocessors", title="Subprocessors · ClearBG", on_load=[on_load, SubprocessorsState.load])
app.add_page(pricing.pricing, route="/pricing", title="Pricing · ClearBG", on_load=[on_load, PricingState.load])
app.add_page(api_docs, route="/docs/api", title="API · ClearBG", on_load=on_load)
app.add_page(credits_page, route="/credits", title="Your credits · ClearBG", on_load=[on_load, CreditsState.load])
app.add_page(
    privacy_center.privacy_center,
    route="/privacy-center",
    title="Privacy center · ClearBG",
    on_load=[on_load, PrivacyState.load, AccountState.load],
)
app.add_page(privacy_center.restore_account, route="/restore-account", title="Keep your account? · ClearBG", on_load=on_load)
app.add_page(history.history, route="/history", title="Processing history · ClearBG", on_load=[on_load, HistoryState.load])
app.register_lifespan_task(background_services)
