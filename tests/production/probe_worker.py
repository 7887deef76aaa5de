"""`harbour worker`'s loop (harbour.core.worker.run_forever), with a probe for the tests.

    python tests/production/probe_worker.py

Environment: the server's (DJANGO_SETTINGS_MODULE, DATABASE_URL, HARBOUR_VAR_DIR, ...), plus
- HARBOUR_PROBE_LOG: a file to which each inbound message id is appended once its processing
  has committed (with this process's pid), so a test can see which process did what, and
  whether any message was processed twice;
- HARBOUR_PROBE_HOLD_REF: when processing a message of this referral, write "holding <id>" to
  the log and wait there forever, mid-transaction (for the test that kills a worker mid-message).
Everything else is the real worker: the same jobs, claims, transactions and loop.
"""
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main():
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "harbour.settings")
    django.setup()
    from django.db import transaction

    from harbour.core import worker
    from harbour.intake import jobs

    log_path = os.environ["HARBOUR_PROBE_LOG"]
    hold = os.environ.get("HARBOUR_PROBE_HOLD_REF", "")
    real_process_one = jobs.process_one

    def write(line: str) -> None:
        with open(log_path, "a") as log:
            log.write(f"{os.getpid()} {line}\n")

    def probed(message, **kwargs):
        if hold and message.referral_ref == hold:
            write(f"holding {message.pk}")
            while True:
                time.sleep(1)
        state = real_process_one(message, **kwargs)
        message_id = message.pk
        transaction.on_commit(lambda: write(f"processed {message_id}"))
        return state

    jobs.process_one = probed
    worker.run_forever()


if __name__ == "__main__":
    main()
