"""The coordinator's durable jobs: a queue of rows claimed with `FOR UPDATE SKIP LOCKED`, and
leadership of periodic work under an advisory lock with a fencing epoch.

The queue never runs a job's effects outside the transaction that records its completion.
"""

from coffer.pipeline.errors import JobInvalid, LeaseLost, NotLeader, PipelineError
from coffer.pipeline.leader import Leadership
from coffer.pipeline.queue import Job, JobQueue, JobState

__all__ = ["Job", "JobInvalid", "JobQueue", "JobState", "LeaseLost", "Leadership", "NotLeader", "PipelineError"]
