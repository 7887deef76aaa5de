def clinic(request):
    """The request's clinic for templates, when the signed-in user belongs to it."""
    user = getattr(request, "user", None)
    clinic = getattr(request, "clinic", None)
    if user is None or not user.is_authenticated or clinic is None or user.clinic_id != getattr(clinic, "pk", None):
        return {"current_clinic": None}
    return {"current_clinic": clinic}
