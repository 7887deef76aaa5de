"""The sandbox worker's jobs (`harbour sandbox worker`): webhook deliveries."""
from harbour.sandbox.delivery import deliver_due

WORKER_JOBS = [deliver_due]
