"""SQLModel tables. Importing this package registers every table on `SQLModel.metadata`."""

from sqlmodel import SQLModel

SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# The tables import after the naming convention is set.

from clearbg_app.models.accounts import ApiKey, AuthSession, LoginThrottle, OAuthIdentity, Role, User  # noqa: E402
from clearbg_app.models.api_usage import ApiUsage  # noqa: E402
from clearbg_app.models.batches import Batch, BatchItem, BatchStatus, ItemStatus, WebhookStatus  # noqa: E402
from clearbg_app.models.billing import CreditAccount, CreditLot, EntryKind, LedgerEntry, Order, OrderStatus, Plan, PlanKind, StripeEvent  # noqa: E402
from clearbg_app.models.images import ImageStatus, ProcessedImage  # noqa: E402
from clearbg_app.models.mail import OutboxMail  # noqa: E402
from clearbg_app.models.operations import AuditEvent, JobRun, JobStatus  # noqa: E402
from clearbg_app.models.policies import PolicyAcknowledgement, PolicyNoticeEmail, PolicyStatus, PolicyVersion  # noqa: E402
from clearbg_app.models.privacy import AccountDeletion, AnalyticsEvent, ConsentEvent, DataExport, ExportStatus  # noqa: E402
from clearbg_app.models.privacy_ops import LegalHold, PrivacyRequest, PrivacyRequestReply, RequestStatus  # noqa: E402
from clearbg_app.models.request_log import RequestLog  # noqa: E402
from clearbg_app.models.stats import DailyCount  # noqa: E402
from clearbg_app.models.subprocessors import Subprocessor  # noqa: E402

__all__ = [
    "AccountDeletion",
    "AnalyticsEvent",
    "ConsentEvent",
    "DataExport",
    "ExportStatus",
    "LegalHold",
    "PrivacyRequest",
    "PrivacyRequestReply",
    "RequestStatus",
    "AuditEvent",
    "JobRun",
    "JobStatus",
    "ApiUsage",
    "Batch",
    "BatchItem",
    "BatchStatus",
    "ItemStatus",
    "WebhookStatus",
    "ApiKey",
    "AuthSession",
    "CreditAccount",
    "CreditLot",
    "EntryKind",
    "LedgerEntry",
    "Order",
    "OrderStatus",
    "Plan",
    "PlanKind",
    "StripeEvent",
    "ImageStatus",
    "LoginThrottle",
    "OAuthIdentity",
    "OutboxMail",
    "PolicyAcknowledgement",
    "PolicyNoticeEmail",
    "PolicyStatus",
    "PolicyVersion",
    "DailyCount",
    "Subprocessor",
    "ProcessedImage",
    "RequestLog",
    "Role",
    "User",
]
