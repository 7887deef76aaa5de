from harbour.audit.models import AuditEntry


def record(action: str, *, clinic=None, actor=None, target: str = "", **details) -> AuditEntry:
    """Append an audit entry. Pass ids, codes and changed field names only, never values of secrets."""
    user = actor if getattr(actor, "is_authenticated", False) else None
    return AuditEntry.objects.create(
        clinic=clinic,
        actor=user,
        actor_username=user.get_username() if user else "",
        action=action,
        target=str(target),
        details=details,
    )
