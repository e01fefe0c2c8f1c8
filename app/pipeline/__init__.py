"""The public API for pipeline stages: everything a custom stage needs, importable from here.

The names below are the stable surface (see docs/stages.md); anything else under ``app`` may
change between releases.
"""

from app.errors import BadRequest, ClientError, Forbidden, ModelNotFound, QuotaExceeded, RelayError
from app.internal import Frames, Reply, StreamItem, Target, Usage
from app.pipeline.context import StageContext
from app.pipeline.core import Exchange, Next, Pipeline, PipelineError, Stage
from app.pipeline.helpers import after_reply, body_text, chunk_text, wrap_stream

__all__ = [
    "BadRequest",
    "ClientError",
    "Exchange",
    "Forbidden",
    "Frames",
    "ModelNotFound",
    "Next",
    "Pipeline",
    "PipelineError",
    "QuotaExceeded",
    "RelayError",
    "Reply",
    "Stage",
    "StageContext",
    "StreamItem",
    "Target",
    "Usage",
    "after_reply",
    "body_text",
    "chunk_text",
    "wrap_stream",
]
