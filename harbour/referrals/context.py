"""Template context: the unread referrals badge of the navigation (computed only when a page shows it)."""
from functools import cache


def unread_referrals(request):
    user = getattr(request, "user", None)
    clinic = getattr(request, "clinic", None)
    if user is None or not user.is_authenticated or clinic is None or user.clinic_id != getattr(clinic, "pk", None):
        return {"unread_referrals": 0, "unread_referrals_cap": 0}

    @cache
    def count() -> int:  # a template calls it; at most one query a request
        from .reading import unread_count

        return unread_count(user, clinic)

    from .reading import UNREAD_CAP

    return {"unread_referrals": count, "unread_referrals_cap": UNREAD_CAP}
