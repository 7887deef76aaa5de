"""The referral page and its action forms, posted as a click does, for the action tests."""
from django.urls import reverse

from harbour.ocean.models import OutboundMessage
from harbour.referrals.staleness import state_token


def detail(client, referral, lang="en"):
    return client.get(reverse("referrals:detail", args=[referral.pk]), HTTP_ACCEPT_LANGUAGE=lang).content.decode()


def action_url(referral, name):
    return reverse("referrals:action", args=[referral.pk, name])


def act(client, referral, name, data=None, **extra):
    """Post an action form as the page renders it: with the referral's current state (staleness.py)."""
    return client.post(action_url(referral, name), {"seen_state": state_token(referral), **(data or {})}, **extra)


def flashes(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def outbound(referral):
    return list(OutboundMessage.objects.filter(referral=referral).order_by("id"))
