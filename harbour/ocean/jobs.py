"""Worker jobs of the Ocean app: deliver the outbox, fetch letters and attachments."""
from .documents import fetch_documents
from .outbox import deliver_outbox

WORKER_JOBS = [deliver_outbox, fetch_documents]
