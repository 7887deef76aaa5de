"""Every staff URL × every role: who gets in, who is refused, and that refusals change nothing.

The URLs come from Harbour's resolver and their expected permissions from tests/hostile/urlmap.py;
the objects that fill URL arguments from tests/hostile/world.py. For each URL and role, on
clinic A's host:
- anonymous: GET and POST redirect to the sign-in page (a POST-only view may answer 405 to GET);
- clinic B's administrator: 403 or 404, never A's patient in the body;
- a member of A without the view's permission: 403;
- a member with it: the page (GET views) or an answer that is not a refusal or an error (POST views);
  a POST-only view answers 405 to GET and changes nothing;
- a POST without its CSRF token (enforce_csrf_checks): 403 for every role.
Every refusal leaves every table of Harbour's apps as it was.
"""
import pytest
from django.conf import settings as django_settings
from django.shortcuts import resolve_url
from django.test import Client
from django.urls import reverse

from tests.hostile.conftest import changed_tables, database_state
from tests.hostile.urlmap import ALLOWED_ROLES, LITERAL_KINDS, VIEWS, staff_urls, unknown
from tests.hostile.world import ROLES

URLS = staff_urls()
KNOWN = [url for url in URLS if unknown(url) is None]


def test_every_staff_url_is_in_the_table():
    """A new URL must get a line in urlmap.VIEWS (its permission and argument kinds) to be tested."""
    problems = [problem for url in URLS if (problem := unknown(url))]
    assert not problems, "URLs the hostile matrix cannot fill:\n" + "\n".join(problems)
    # The walk itself found the app's URLs (a broken walk must not pass as "nothing to check").
    assert {"referrals:detail", "clinics:ocean_settings", "patients:accept_review"} <= {u.name for u in URLS}


def url_for(url, world, owners=None) -> str:
    """The URL with each argument filled from clinic A's objects (or per `owners`: arg -> "a"/"b")."""
    kwargs = {}
    for argument, kind in VIEWS[url.view].id_kinds.items():
        if kind in LITERAL_KINDS:
            kwargs[argument] = LITERAL_KINDS[kind]
        else:
            side = world.a if (owners or {}).get(argument, "a") == "a" else world.b
            kwargs[argument] = side.objects[kind].pk
    return reverse(url.name, kwargs=kwargs)


def client(user, host, *, csrf=False) -> Client:
    c = Client(HTTP_HOST=host, enforce_csrf_checks=csrf)
    if user is not None:
        c.force_login(user)
    return c


def assert_unchanged(before, what):
    changed = changed_tables(before, database_state())
    assert not changed, f"{what} changed {changed}"


def assert_login_redirect(response, what):
    login = resolve_url(django_settings.LOGIN_URL)
    assert response.status_code == 302, f"{what}: {response.status_code}"
    assert response["Location"].startswith(login + "?next="), f"{what}: {response['Location']}"


def body(response) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode(errors="replace")
    return response.content.decode(errors="replace")


# Refused roles first: each must leave the database as it was; allowed roles (which may act) last.
ORDER = ("anonymous", "other_clinic_admin", "staff", "settings_only", "users_only", "admin")
assert set(ORDER) == set(ROLES)


@pytest.mark.parametrize("url", KNOWN, ids=lambda url: url.test_id)
def test_matrix(world, url):
    """One URL, every role in turn (one world per URL keeps the suite fast on PostgreSQL)."""
    rule = VIEWS[url.view]
    allowed = [role for role in ORDER if role in ALLOWED_ROLES[rule.needs]]
    for role in [role for role in ORDER if role not in allowed] + allowed:
        check_role(world, url, rule, role)


def check_role(world, url, rule, role):
    user = world.user(role)
    path = url_for(url, world)
    host = world.a.host
    strict, c = client(user, host, csrf=True), client(user, host)  # signing in writes last_login
    before = database_state()

    # No CSRF token: refused before the view runs, whoever asks.
    response = strict.post(path, {})
    assert response.status_code == 403, f"CSRF-less POST {path} as {role}: {response.status_code}"
    assert_unchanged(before, f"CSRF-less POST {path} as {role}")

    get, post = c.get(path), c.post(path, {})
    what = f"{path} as {role}"
    if role == "anonymous":
        if "GET" in rule.methods:
            assert_login_redirect(get, f"GET {what}")
        else:
            assert get.status_code in (302, 405), f"GET {what}: {get.status_code}"
            if get.status_code == 302:
                assert_login_redirect(get, f"GET {what}")
        assert_login_redirect(post, f"POST {what}")
        assert_unchanged(before, what)
    elif role == "other_clinic_admin":
        for method, response in (("GET", get), ("POST", post)):
            if method not in rule.methods and response.status_code == 405:
                continue  # the method check ran before the access check: nothing was shown or done
            assert response.status_code in (403, 404), f"{method} {what}: {response.status_code}"
            assert world.a.patient_family not in body(response)
        assert_unchanged(before, what)
    elif role not in ALLOWED_ROLES[rule.needs]:
        for method, response in (("GET", get), ("POST", post)):
            if method not in rule.methods and response.status_code == 405:
                continue
            assert response.status_code == 403, f"{method} {what} (needs {rule.needs}): {response.status_code}"
        assert_unchanged(before, what)
    else:
        if "GET" in rule.methods:
            assert get.status_code == 200, f"GET {what}: {get.status_code}"
        else:
            assert get.status_code == 405, f"GET {what} must not act: {get.status_code}"
        if "POST" in rule.methods:
            # 409: a referral action posted without the state its page showed (seen_state) is
            # refused as coming from an out-of-date page, and the page is shown again.
            assert post.status_code in (200, 302, 400, 409), f"POST {what}: {post.status_code}"
        else:
            assert post.status_code in (200, 405), f"POST {what}: {post.status_code}"


def test_get_on_post_only_views_changes_nothing(world):
    """A GET (a link, an image tag on another site) never performs an action, even for the admin."""
    c = client(world.a.users["admin"], world.a.host)
    before = database_state()
    for url in KNOWN:
        if "GET" not in VIEWS[url.view].methods:
            response = c.get(url_for(url, world))
            assert response.status_code == 405, (url.route, response.status_code)
    assert_unchanged(before, "GETs on POST-only views")
