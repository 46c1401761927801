"""The posting domain: prompts, variants, checks, selection and storage of KOL posts."""

from posting._batches import (
    BatchCounts,
    BatchItem,
    Batches,
    BatchView,
    post_id_for,
    run_in_process,
)
from posting._limits import LocalLimiter
from posting._checks import Check, Limits
from posting._db import DatabaseUnavailable, check_connection, migrate, open_pool
from posting._errors import (
    Conflict,
    InvalidRequest,
    NotFound,
    PostingError,
    TransitionNotAllowed,
    UnknownKol,
    UnknownStock,
)
from posting._models import (
    PostCreated,
    PostDone,
    PostError,
    PostEvent,
    PostRequest,
    PostSelected,
    PostStatus,
    PostView,
    StageDone,
    VariantDelta,
    VariantDone,
    VariantView,
)
from posting._pipeline import Emit, Pipeline, Prepared
from posting._plans import Plan, expand, longest_first
from posting._prompts import Facts, build_messages
from posting._queue import BatchQueue, QueueUnavailable, RedisLimiter, job_id
from posting._review import (
    Change,
    KolChange,
    Page,
    PostChange,
    PostFilters,
    PostSummary,
    Review,
    ValueChange,
)
from posting._service import PostingService
from posting._stocks import Stock, StockDirectory
from posting._store import Store
from posting._text import LENGTH_UNIT_PATTERN, normalize, text_length

__all__ = [
    "BatchCounts",
    "BatchItem",
    "BatchQueue",
    "BatchView",
    "Batches",
    "LocalLimiter",
    "Plan",
    "RedisLimiter",
    "expand",
    "job_id",
    "longest_first",
    "post_id_for",
    "run_in_process",
    "Change",
    "Check",
    "Conflict",
    "DatabaseUnavailable",
    "Emit",
    "Facts",
    "InvalidRequest",
    "LENGTH_UNIT_PATTERN",
    "KolChange",
    "Limits",
    "NotFound",
    "Page",
    "Pipeline",
    "PostChange",
    "PostCreated",
    "PostDone",
    "PostError",
    "PostEvent",
    "PostFilters",
    "PostRequest",
    "PostSelected",
    "PostStatus",
    "PostSummary",
    "PostView",
    "PostingError",
    "PostingService",
    "Prepared",
    "QueueUnavailable",
    "Review",
    "StageDone",
    "Stock",
    "StockDirectory",
    "Store",
    "TransitionNotAllowed",
    "UnknownKol",
    "UnknownStock",
    "ValueChange",
    "VariantDelta",
    "VariantDone",
    "VariantView",
    "build_messages",
    "check_connection",
    "migrate",
    "normalize",
    "open_pool",
    "text_length",
]
