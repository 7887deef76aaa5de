"""The one error the sandbox's actions raise: a message a person or a test can act on."""


class SandboxError(Exception):
    """A refused action. `status` is what the JSON admin API answers; `field` names the input."""

    def __init__(self, message: str, *, status: int = 400, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.field = field
