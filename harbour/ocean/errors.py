"""What can go wrong talking to Ocean, in classes the outbox and the settings page can act on.

Error texts carry HTTP statuses, exception class names and Ocean's own OperationOutcome text,
never a token, a secret or a request body.
"""
from __future__ import annotations

import httpx

MAX_ERROR_TEXT = 2000


class OceanError(Exception):
    """Base class."""


class OceanUnreachable(OceanError):
    """No answer: connection refused, DNS, TLS or a timeout. Always worth retrying."""

    def __init__(self, detail: str = ""):
        super().__init__(f"Ocean could not be reached ({detail})" if detail else "Ocean could not be reached")
        self.detail = detail


class OceanRejected(OceanError):
    """Ocean answered with a non-2xx status. `text` is its OperationOutcome, made plain."""

    RETRYABLE = frozenset({408, 425, 429})

    def __init__(self, status: int, text: str = ""):
        super().__init__(f"Ocean answered {status}" + (f": {text}" if text else ""))
        self.status = status
        self.text = text

    @property
    def retryable(self) -> bool:
        return self.status in self.RETRYABLE or self.status >= 500


class CredentialsRejected(OceanError):
    """The token endpoint refused the clinic's credentials.

    `which` is "client_id", "secret", "unknown" (Ocean did not say which) or "missing" (none saved).
    """

    def __init__(self, which: str = "unknown"):
        super().__init__(f"Ocean refused the OAuth credentials ({which})")
        self.which = which


class RefusedHost(OceanError):
    """A document URL points outside the configured Ocean server: the token never goes there."""


def operation_outcome_text(response: httpx.Response) -> str:
    """The diagnostics/details of an OperationOutcome, else a short slice of the body's text."""
    try:
        data = response.json()
    except ValueError:
        data = None
    parts: list[str] = []
    if isinstance(data, dict) and data.get("resourceType") == "OperationOutcome":
        for issue in data.get("issue") or []:
            if not isinstance(issue, dict):
                continue
            details = issue.get("details") if isinstance(issue.get("details"), dict) else {}
            for text in (issue.get("diagnostics"), details.get("text")):
                if isinstance(text, str) and text.strip() and text.strip() not in parts:
                    parts.append(text.strip())
            if not parts and isinstance(issue.get("code"), str):
                parts.append(issue["code"])
    elif isinstance(data, dict):
        for key in ("error_description", "message", "error"):
            if isinstance(data.get(key), str) and data[key].strip():
                parts.append(data[key].strip())
                break
    text = " · ".join(parts)
    if not text:
        content_type = response.headers.get("content-type", "")
        if content_type.startswith(("text/plain", "application/json", "application/fhir+json")):
            text = response.text.strip()
    return text[:MAX_ERROR_TEXT]
