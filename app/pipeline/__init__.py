"""The request pipeline: an ordered list of stages every inference request passes through."""

from app.pipeline.core import Exchange, Next, Pipeline, Reply, Stage, Target, Usage

__all__ = ["Exchange", "Next", "Pipeline", "Reply", "Stage", "Target", "Usage"]
