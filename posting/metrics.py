"""Prometheus metrics for the shells: what a server or a worker records and serves.

Generations record themselves (the pipeline calls `observe_post`). A worker adds its
own figures and serves them without an ASGI app:

    endpoint = metrics.serve_worker_metrics(port=settings.batches.metrics_port)
    metrics.record_batch_item("done")
    metrics.set_queue_depth(await queue.depth())
    with metrics.job_in_progress():
        ...
    endpoint.close()  # at shutdown

Run several worker processes either each on its own port, or with a shared
`PROMETHEUS_MULTIPROC_DIR` (set before the process starts) and one port scraped.
"""

from posting._exposition import (
    ENV,
    MetricsServer,
    MultiprocessMisconfigured,
    exposition,
    fresh_multiprocess_dir,
    multiprocess_dir,
    process_exiting,
    registry,
    serve_worker_metrics,
)
from posting._metrics import (
    BATCH_STATES,
    job_in_progress,
    observe_job_wait,
    observe_post,
    record_batch_item,
    set_queue_depth,
)

__all__ = [
    "BATCH_STATES",
    "ENV",
    "MetricsServer",
    "MultiprocessMisconfigured",
    "exposition",
    "fresh_multiprocess_dir",
    "job_in_progress",
    "multiprocess_dir",
    "observe_job_wait",
    "observe_post",
    "process_exiting",
    "record_batch_item",
    "registry",
    "serve_worker_metrics",
    "set_queue_depth",
]
