"""Every page has a title and a lang attribute, every field a label; sign-in and language switching work."""
from html.parser import HTMLParser

import pytest
from django.test import Client

from tests.conftest import PASSWORD

HOST = "soleil.example.org"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


class PageFacts(HTMLParser):
    """Collects what accessibility needs: <title>, <html lang>, fields and the labels pointing at them."""

    def __init__(self):
        super().__init__()
        self.lang = None
        self.title = ""
        self.in_title = False
        self.fields = []
        self.label_targets = set()
        self.in_label = 0
        self.ids = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.append(attrs["id"])
        if tag == "html":
            self.lang = attrs.get("lang")
        elif tag == "title":
            self.in_title = True
        elif tag == "label":
            self.in_label += 1
            if attrs.get("for"):
                self.label_targets.add(attrs["for"])
        elif tag in {"input", "select", "textarea"}:
            if attrs.get("type") in {"hidden", "submit", "button"}:
                return
            self.fields.append((attrs.get("id"), attrs.get("name"), bool(attrs.get("aria-label")), self.in_label > 0))

    def handle_endtag(self, tag):
        if tag == "title":
            self.in_title = False
        elif tag == "label":
            self.in_label -= 1

    def handle_data(self, data):
        if self.in_title:
            self.title += data


def facts(response) -> PageFacts:
    parser = PageFacts()
    parser.feed(response.content.decode())
    return parser


def assert_accessible(response, lang="fr"):
    assert response.status_code == 200
    page = facts(response)
    assert page.lang == lang
    assert page.title.strip() and page.title.strip() != "· Harbour"
    unlabelled = [
        (field_id, name)
        for field_id, name, aria, wrapped in page.fields
        if not (aria or wrapped or (field_id and field_id in page.label_targets))
    ]
    assert unlabelled == []
    duplicates = {i for i in page.ids if page.ids.count(i) > 1}
    assert duplicates == set()


@pytest.mark.parametrize("url", ["/", "/settings/consultations/ocean/", "/settings/users/", "/audit/"])
def test_staff_pages_are_accessible_in_both_languages(admin_client, url):
    assert_accessible(admin_client.get(url), "fr")
    admin_client.post("/i18n/setlang/", {"language": "en", "next": url})
    assert_accessible(admin_client.get(url), "en")


def test_pages_with_errors_keys_and_confirmations_are_accessible(admin_client):
    url = "/settings/consultations/ocean/"
    assert_accessible(admin_client.post(url, {"site_number": "x", "server": "custom"}))
    assert_accessible(admin_client.post(url + "inbound-key/"))
    assert_accessible(admin_client.post(url + "inbound-key/"))  # the confirmation page
    assert_accessible(admin_client.post("/settings/users/add/", {"new-username": ""}))


def test_the_login_page(clinic):
    client = Client(HTTP_HOST=HOST)
    response = client.get("/accounts/login/")
    assert_accessible(response)
    page = response.content.decode()
    assert "Se connecter" in page and "Clinique Soleil" in page


def test_signing_in_and_out(admin_user):
    client = Client(HTTP_HOST=HOST)
    wrong = client.post("/accounts/login/", {"username": "admin-soleil", "password": "wrong"})
    assert wrong.status_code == 200
    assert "Saisissez un nom d’utilisateur et un mot de passe valides." in wrong.content.decode()
    response = client.post("/accounts/login/", {"username": "admin-soleil", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/").status_code == 302


def test_the_language_switch_in_the_header(admin_client):
    page = admin_client.get("/settings/consultations/ocean/").content.decode()
    assert 'action="/i18n/setlang/"' in page and 'name="language" value="en"' in page
    response = admin_client.post("/i18n/setlang/", {"language": "en", "next": "/settings/consultations/ocean/"})
    assert response.status_code == 302 and response["Location"] == "/settings/consultations/ocean/"
    english = admin_client.get("/settings/consultations/ocean/").content.decode()
    assert "Save Ocean Settings" in english and 'name="language" value="fr"' in english
    # A foreign `next` is not followed.
    away = admin_client.post("/i18n/setlang/", {"language": "fr", "next": "https://evil.example.com/"})
    assert away["Location"] == "/"
