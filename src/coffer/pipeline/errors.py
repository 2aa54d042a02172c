"""Errors of the coordinator's durable job pipeline."""

from __future__ import annotations

from coffer.errors import CofferError

__all__ = ["PipelineError", "LeaseLost", "JobInvalid", "NotLeader"]


class PipelineError(CofferError):
    """Root of the pipeline's typed failures."""


class LeaseLost(PipelineError):
    """The job's lease expired and another worker claimed it: this worker must not complete it."""

    def __init__(self, job_id: int, fence: int) -> None:
        super().__init__(f"job {job_id}: lease lost (fence {fence} is no longer current)")
        self.job_id = job_id
        self.fence = fence


class JobInvalid(PipelineError):
    """A job's kind, key or payload is outside the limits."""


class NotLeader(PipelineError):
    """A periodic job's write was fenced off: another coordinator holds a newer epoch."""

    def __init__(self, name: str, epoch: int) -> None:
        super().__init__(f"{name}: epoch {epoch} is no longer the leader's")
        self.name = name
        self.epoch = epoch
