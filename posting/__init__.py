"""The posting domain: prompts, variants, checks, selection and storage of KOL posts."""

from posting._checks import Check, Limits
from posting._db import DatabaseUnavailable, migrate, open_pool
from posting._errors import InvalidRequest, PostingError, UnknownKol, UnknownStock
from posting._models import (
    PostCreated,
    PostDone,
    PostError,
    PostEvent,
    PostRequest,
    PostSelected,
    PostView,
    StageDone,
    VariantDelta,
    VariantDone,
    VariantView,
)
from posting._pipeline import Emit, Pipeline, Prepared
from posting._prompts import Facts, build_messages
from posting._service import PostingService
from posting._stocks import Stock, StockDirectory
from posting._store import Store
from posting._text import normalize, text_length

__all__ = [
    "Check",
    "DatabaseUnavailable",
    "Emit",
    "Facts",
    "InvalidRequest",
    "Limits",
    "Pipeline",
    "PostCreated",
    "PostDone",
    "PostError",
    "PostEvent",
    "PostRequest",
    "PostSelected",
    "PostView",
    "PostingError",
    "PostingService",
    "Prepared",
    "StageDone",
    "Stock",
    "StockDirectory",
    "Store",
    "UnknownKol",
    "UnknownStock",
    "VariantDelta",
    "VariantDone",
    "VariantView",
    "build_messages",
    "migrate",
    "normalize",
    "open_pool",
    "text_length",
]
