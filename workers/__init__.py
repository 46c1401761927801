"""arq workers: a thin shell that runs batch items through the posting pipeline."""

from workers._worker import WorkerSettings, reconcile, run_batch_item, worker_overrides

__all__ = ["WorkerSettings", "reconcile", "run_batch_item", "worker_overrides"]
