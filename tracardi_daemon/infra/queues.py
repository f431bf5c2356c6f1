"""Every work queue of the daemon by name, and the one way to open one.

A queue opened with the daemon's settings takes the ``[queue]`` section (visibility
timeout, attempts, back-off), the dispatch queue ``[dispatch]``'s attempts and back-off;
the profile-changed queue is capped in length, whoever opens it. A producer without the
settings (a Python caller of a client module) gets the defaults, which only consumers
read."""

from __future__ import annotations

from tracardi_daemon.config.settings import Settings
from tracardi_daemon.infra.queue import WorkQueue
from tracardi_daemon.infra.redis import RedisClient

UPGRADE_QUEUE = "upgrade"  # migration and import jobs
MAPPING_QUEUE = "mapping"  # batch mapping jobs
SEGMENTATION_QUEUE = "segmentation"  # segmentation passes waiting for a runner
PROFILE_CHANGED_QUEUE = "profile-changed"  # profiles whose segments to re-evaluate
SEGMENT_CHANGES_QUEUE = "segment-changes"  # transitions, for the trigger role
DISPATCH_QUEUE = "dispatch"  # deliveries, for the senders
SCHEDULER_QUEUE = "scheduler"  # only dead letters: delayed jobs that cannot be read
QUEUES = (UPGRADE_QUEUE, MAPPING_QUEUE, SEGMENTATION_QUEUE, PROFILE_CHANGED_QUEUE,
          SEGMENT_CHANGES_QUEUE, DISPATCH_QUEUE, SCHEDULER_QUEUE)

# without a segmentation role reading it, the profile-changed queue must not grow
# without bound: the oldest announcements are dropped beyond this (passes cover them)
PROFILE_CHANGED_MAX_LENGTH = 1_000_000


def work_queue(redis: RedisClient, tenant: str, name: str,
               settings: Settings | None = None) -> WorkQueue:
    """The tenant's queue ``name``, tuned by ``settings`` when given."""
    max_length = PROFILE_CHANGED_MAX_LENGTH if name == PROFILE_CHANGED_QUEUE else None
    if settings is None:
        return WorkQueue(redis, tenant, name, max_length=max_length)
    queue = settings.queue
    attempts, initial_s, max_s = (queue.max_attempts, queue.retry_backoff_initial_s,
                                  queue.retry_backoff_max_s)
    if name == DISPATCH_QUEUE:
        dispatch = settings.dispatch
        attempts, initial_s, max_s = (dispatch.max_attempts, dispatch.retry_backoff_initial_s,
                                      dispatch.retry_backoff_max_s)
    return WorkQueue(redis, tenant, name, visibility_timeout_s=queue.visibility_timeout_s,
                     max_attempts=attempts, retry_backoff_initial_s=initial_s,
                     retry_backoff_max_s=max_s, max_length=max_length)
