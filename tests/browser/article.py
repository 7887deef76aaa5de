"""The clinic setup article (shared/docs/clinic-setup-article.fr.txt), clicked through in a browser.

`Words` holds what the administrator reads on Harbour's pages in each language (the French ones
are the article's own wording); the sandbox, like Ocean, is English only. `Administrator`
drives two tabs of one browser, Harbour and the Ocean sandbox, and copies values from one to
the other with the pages' copy buttons and Ctrl+V. Every page it reaches is checked with
`check_accessible`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from playwright.sync_api import expect

from tests.browser.helpers import check_accessible, copy_with, paste_into, poll, tab_to

SETTINGS_PATH = "/settings/consultations/ocean/"
SERVER_CHOICE = re.compile(r"^(Production|Test|Staging|Préproduction|Custom URL|Adresse URL personnalisée) ")
COPY_LABEL = "Allow a copy of the referral to be sent to this endpoint when a new referral is sent from this site"


@dataclass(frozen=True)
class Words:
    lang: str
    sign_in: str
    username: str
    password: str
    settings: str
    settings_title: str
    site_number: str
    custom_server: str
    custom_server_url: str
    save: str
    saved: str
    nothing_changed: str
    generate: str
    new_key_title: str
    request_url: str
    key: str
    client_id: str
    secret: str
    secret_saved: str
    test_connection: str
    connection_works: str
    last_rejected: str
    rejected_at: str  # "401 le …" / "401 at …": the rejected call's status and the word before its time
    users: str
    new_username: str
    new_password: str
    new_password_again: str
    add_user: str
    # The referral workspace and the referral page.
    consultations: str
    received: str
    sent: str
    suggested_charts: str
    link_chart: str
    linked_to: str
    accept: str
    accepted: str
    book_an_appointment: str
    date: str
    time: str
    confirmed: str
    book: str
    booked: str
    declined: str


FR = Words(
    lang="fr", sign_in="Se connecter", username="Nom d'utilisateur", password="Mot de passe", settings="Paramètres",
    settings_title="Paramètres > Consultations > Ocean · Harbour", site_number="Numéro de site",
    custom_server="Adresse URL personnalisée (p. ex. le bac à sable Ocean)",
    custom_server_url="Adresse URL du serveur personnalisé", save="Enregistrer les paramètres Ocean",
    saved="Paramètres Ocean enregistrés.", nothing_changed="Rien n'a changé.", generate="Générer",
    new_key_title="Nouvelle clé d'authentification entrante", request_url="Adresse URL de la demande (Request URL)",
    key="Clé (Key)", client_id="Identifiant de client (Client ID)", secret="Secret",
    secret_saved="Secret enregistré, masqué", test_connection="Tester la connexion à Ocean",
    connection_works="Harbour peut joindre Ocean avec vos identifiants OAuth",
    last_rejected="Dernier appel refusé", rejected_at="401 le ", users="Utilisateurs",
    new_username="Nom d’utilisateur", new_password="Mot de passe", new_password_again="Confirmation du mot de passe",
    add_user="Ajouter l'utilisateur",
    consultations="Consultations", received="Reçues", sent="Envoyées", suggested_charts="Dossiers suggérés",
    link_chart="Lier à ce dossier", linked_to="Lié au dossier", accept="Accepter", accepted="Acceptée",
    book_an_appointment="Prendre un rendez-vous", date="Date", time="Heure", confirmed="Confirmé avec le patient",
    book="Fixer le rendez-vous", booked="Rendez-vous fixé", declined="Refusée",
)
EN = Words(
    lang="en", sign_in="Sign in", username="Username", password="Password", settings="Settings",
    settings_title="Settings > Referral > Ocean · Harbour", site_number="Site Number",
    custom_server="Custom URL (for example the Ocean sandbox)", custom_server_url="Custom server URL",
    save="Save Ocean Settings", saved="Ocean settings saved.", nothing_changed="Nothing changed.", generate="Generate",
    new_key_title="New inbound key", request_url="Request URL", key="Key", client_id="Client ID", secret="Secret",
    secret_saved="Secret saved, hidden", test_connection="Test the connection to Ocean",
    connection_works="Harbour can reach Ocean with your OAuth credentials",
    last_rejected="Last rejected call", rejected_at="401 at ", users="Users", new_username="Username",
    new_password="Password", new_password_again="Password confirmation", add_user="Add the user",
    consultations="Consultations", received="Received", sent="Sent", suggested_charts="Suggested charts",
    link_chart="Link to this chart", linked_to="Linked to chart", accept="Accept", accepted="Accepted",
    book_an_appointment="Book an appointment", date="Date", time="Time", confirmed="Confirmed with the patient",
    book="Book", booked="Booked", declined="Declined",
)


def field(page, label: str):
    """A form field by its label, with or without Django's trailing colon (sections labelled by
    their heading have the same name: only inputs, selects and textareas are fields)."""
    return page.get_by_label(re.compile(rf"^\s*{re.escape(label)}\s*:?\s*$")).and_(page.locator("input, select, textarea"))


def button(page, name: str):
    return page.get_by_role("button", name=name, exact=True)


def link(page, name: str):
    return page.get_by_role("link", name=name, exact=True)


def flash(page) -> str:
    """The messages shown at the top of the page (role=status)."""
    messages = page.locator("ul.messages")
    return messages.inner_text() if messages.count() else ""


def go(page, locator=None, *, key: str | None = None) -> None:
    """Click (or press `key` on the focused element) and wait for the page it leads to."""
    with page.expect_navigation():
        if key:
            page.keyboard.press(key)
        else:
            locator.click()
    page.wait_for_load_state()


def says(page, text: str) -> None:
    """The page's messages (role=status) include `text`."""
    expect(page.locator("ul.messages")).to_contain_text(text)


# --- Harbour --------------------------------------------------------------------------------------

def sign_in_with_keyboard(page, words: Words, username: str, password: str) -> None:
    """Harbour's sign-in page, with the keyboard alone: Tab to each field, type, Enter."""
    assert page.title() == f"{words.sign_in} · Harbour"
    check_accessible(page, words.lang)
    tab_to(page, words.username)
    page.keyboard.type(username)
    tab_to(page, words.password)
    page.keyboard.type(password)
    go(page, key="Enter")
    assert page.title() != f"{words.sign_in} · Harbour", f"still on the sign-in page: {flash(page)}"


def sign_in(page, base_url: str, words: Words, username: str, password: str, path: str = "/") -> None:
    page.goto(base_url + path)
    field(page, words.username).fill(username)
    field(page, words.password).fill(password)
    go(page, button(page, words.sign_in))
    check_accessible(page, words.lang)


def add_staff_user(page, words: Words, username: str, password: str) -> None:
    """The administrator adds a staff user with no permission (Users page, both boxes left unticked)."""
    go(page, link(page, words.users))
    check_accessible(page, words.lang)
    add = page.locator("#add-user")
    field(add, words.new_username).fill(username)
    field(add, words.new_password).fill(password)
    field(add, words.new_password_again).fill(password)
    go(page, button(add, words.add_user))
    says(page, username)


# --- The Ocean sandbox (English, Ocean's menu names) ----------------------------------------------

def ocean_sign_up(page, base_url: str, username: str, password: str) -> None:
    page.goto(base_url + "/login/")
    check_accessible(page, "en")
    go(page, link(page, "Sign up here!"))
    check_accessible(page, "en")
    field(page, "Username").fill(username)
    field(page, "Email").fill(f"{username}@example.org")
    field(page, "Password").fill(password)
    go(page, button(page, "Sign up"))
    expect(page.get_by_role("heading", name="Your Ocean sites")).to_be_visible()


def ocean_create_site(page, name: str) -> str:
    """Create a site; returns its Site Number."""
    go(page, link(page, "Create a site"))
    check_accessible(page, "en")
    field(page, "Site name").fill(name)
    go(page, button(page, "Create site"))
    expect(page.get_by_role("heading", name="Site Account")).to_be_visible()
    return page.locator("#site-number").inner_text().strip()


def ocean_admin(page, item: str) -> None:
    """Menu > Admin > item."""
    go(page, page.get_by_role("navigation", name="Menu").get_by_role("link", name="Admin", exact=True))
    check_accessible(page, "en")
    go(page, link(page, item))
    check_accessible(page, "en")


def ocean_create_encryption_key(page) -> str:
    """Admin > Encryption: a generated Shared Encryption Key, copied with its Copy button."""
    ocean_admin(page, "Encryption")
    go(page, button(page, "Create Shared Encryption Key"))
    check_accessible(page, "en")
    return copy_with(page, page.locator('[data-copy="#new-key"]'))


def ocean_enable_cloud_connect(page, sek: str, shot=None) -> None:
    """Article step 2: Site Features > Enable Ocean Cloud Connect > Go to Cloud Connect > Store my encryption key."""
    ocean_admin(page, "Site Features")
    page.get_by_label("Enable Ocean Cloud Connect").check()
    go(page, button(page, "Save"))
    says(page, "Go to Cloud Connect")
    go(page, link(page, "Go to Cloud Connect"))
    check_accessible(page, "en")
    expect(page.get_by_role("heading", name="Store my encryption key")).to_be_visible()
    field(page, "Shared Encryption Key").fill(sek)
    if shot:
        shot(page, "ocean-cloud-connect-key")
    go(page, button(page, "Save"))
    says(page, "Your shared encryption key is stored in Ocean Cloud Connect.")


def ocean_register_integration(page, *, name: str, paste_request_url, paste_key, shot=None, doc=None) -> None:
    """Article step 3.2: Admin > Integrations > Register an Integration. `paste_request_url(field)`
    and `paste_key(field)` fill those two fields (copy in Harbour, paste here)."""
    ocean_admin(page, "Integrations")
    go(page, link(page, "Register an Integration"))
    check_accessible(page, "en")
    page.get_by_label("eReferrals", exact=True).check()
    field(page, "Integration Name").fill(name)
    paste_request_url(field(page, "Request URL"))
    page.get_by_label("FHIR v0.11.1", exact=True).check()
    field(page, "Authentication").select_option(label="API Key Authentication")
    field(page, "Header Name").fill("Referral-Integration-API-Key")
    paste_key(field(page, "Key"))
    field(page, COPY_LABEL).check()
    if shot:
        shot(page, "ocean-register-integration", doc=doc)
    go(page, button(page, "Save"))
    says(page, f"Integration {name} saved.")


def ocean_add_listing(page, *, name: str, integration: str, service_id: str) -> str:
    """Admin > Directory Listings: a listing that accepts eReferrals, bound to the integration; its reference."""
    ocean_admin(page, "Directory Listings")
    field(page, "Listing name").fill(name)
    field(page, "Accept eReferrals").check()
    field(page, "Integration").select_option(label=integration)
    field(page, "External Service ID").fill(service_id)
    go(page, button(page, "Save"))
    says(page, "Listing saved.")
    row = page.get_by_role("row").filter(has_text=name)
    return row.locator("code").inner_text().strip()


def ocean_create_oauth_credentials(page, name: str) -> None:
    """Article step 4.1: Admin > Manage Credentials > Manage OAuth Credentials > Add New Credential."""
    ocean_admin(page, "Manage Credentials")
    go(page, link(page, "Manage OAuth Credentials"))
    check_accessible(page, "en")
    field(page, "Name").fill(name)
    go(page, button(page, "Add New Credential"))
    check_accessible(page, "en")
    expect(page.locator("#client-id")).to_be_visible()
    expect(page.locator("#client-secret")).to_be_visible()


def ocean_send_referral(page, *, listing: str, family: str, given: str, birth_date: str, hcn: str, version: str,
                        reason: str) -> str:
    """New referral from the signed-in site's portal; returns the referral's reference."""
    go(page, page.get_by_role("navigation", name="Menu").get_by_role("link", name="New referral", exact=True))
    check_accessible(page, "en")
    field(page, "Listing reference").fill(listing)
    field(page, "Patient last name").fill(family)
    field(page, "Patient first name(s)").fill(given)
    field(page, "Birth date").fill(birth_date)
    field(page, "Sex").select_option(label="Female")
    field(page, "Health card number").fill(hcn)
    field(page, "Version code").fill(version)
    field(page, "Reason for Referral").fill(reason)
    go(page, button(page, "Send referral"))
    says(page, "Referral sent.")
    check_accessible(page, "en")
    return page.locator(".breadcrumb code").inner_text().strip()


# --- The article, steps 1 to 4 -------------------------------------------------------------------

class Administrator:
    """The clinic administrator with Harbour in one tab and the Ocean sandbox in another."""

    def __init__(self, context, servers, words: Words, shot, *, username: str, password: str):
        self.harbour, self.sandbox = servers
        self.words = words
        self.shot = shot
        self.username, self.password = username, password
        self.emr = context.new_page()
        self.ocean = context.new_page()
        self.site_number = ""
        self.sek = ""

    def open_settings(self) -> None:
        """Paramètres (Settings) in Harbour's menu: Paramètres > Consultations > Ocean."""
        w = self.words
        self.emr.bring_to_front()
        go(self.emr, self.emr.get_by_role("navigation", name=re.compile("^(Principal|Main)$")).get_by_role("link", name=w.settings, exact=True))
        assert self.emr.title() == w.settings_title
        check_accessible(self.emr, w.lang)

    def before_the_article(self, ocean_username: str, site_name: str) -> None:
        """An Ocean user account ("Sign up here!") and site, with its shared encryption key kept aside."""
        self.ocean.bring_to_front()
        ocean_sign_up(self.ocean, self.sandbox.base_url, ocean_username, self.password)
        ocean_create_site(self.ocean, site_name)
        self.sek = ocean_create_encryption_key(self.ocean)
        self.shot(self.ocean, "ocean-encryption-key")

    def step1_site_number(self) -> None:
        """Ocean: Admin > Site Account, Site Number (Copy). Harbour: sign in, Paramètres >
        Consultations > Ocean, paste it in « Numéro de site », choose the sandbox as the Ocean
        server, « Enregistrer les paramètres Ocean ». Harbour's part with the keyboard alone."""
        w = self.words
        ocean, emr = self.ocean, self.emr
        ocean.bring_to_front()
        ocean_admin(ocean, "Site Account")
        self.site_number = copy_with(ocean, ocean.locator('[data-copy="#site-number"]'))
        assert re.fullmatch(r"\d+", self.site_number), self.site_number
        self.shot(ocean, "ocean-site-account")

        emr.bring_to_front()
        emr.goto(self.harbour.base_url + "/")
        sign_in_with_keyboard(emr, w, self.username, self.password)
        check_accessible(emr, w.lang)
        self.open_settings()
        # Keyboard only from here: Tab to the field, paste, choose the server, Tab to the button, Enter.
        tab_to(emr, w.site_number)
        emr.keyboard.press("ControlOrMeta+V")
        assert field(emr, w.site_number).input_value() == self.site_number
        tab_to(emr, SERVER_CHOICE)  # Tab reaches the group's checked radio; arrows move the choice
        for _ in range(6):
            if emr.evaluate("document.activeElement.labels[0].textContent.trim()") == w.custom_server:
                break
            emr.keyboard.press("ArrowDown")
        assert emr.get_by_label(w.custom_server, exact=True).is_checked()
        tab_to(emr, w.custom_server_url)
        emr.keyboard.type(self.sandbox.base_url)
        self.shot(emr, "harbour-site-number")
        tab_to(emr, w.save)
        go(emr, key="Enter")
        says(emr, w.saved)
        assert field(emr, w.site_number).input_value() == self.site_number
        check_accessible(emr, w.lang)

    def step2_cloud_connect(self) -> None:
        self.ocean.bring_to_front()
        ocean_enable_cloud_connect(self.ocean, self.sek, shot=self.shot)

    def step3_inbound_key(self, integration_name: str) -> str:
        """Harbour: « Générer », then in Ocean Register an Integration with the Request URL and
        the key copied from Harbour's page; « Enregistrer les paramètres Ocean ». Returns the key."""
        w = self.words
        emr, ocean = self.emr, self.ocean
        emr.bring_to_front()
        go(emr, button(emr, w.generate))
        expect(emr.get_by_role("heading", name=w.new_key_title)).to_be_visible()
        check_accessible(emr, w.lang)
        panel = emr.locator("#new-key")
        request_url = field(panel, w.request_url).input_value()
        assert request_url == f"{self.harbour.base_url}/public/ocean/fhir_bundles"
        key = field(panel, w.key).input_value()
        self.shot(emr, "harbour-new-key")

        def copy_from_harbour(label: str) -> str:
            emr.bring_to_front()
            copied = copy_with(emr, field(panel, label).locator("xpath=..").get_by_role("button"))
            ocean.bring_to_front()
            return copied

        def paste_request_url(target) -> None:
            assert copy_from_harbour(w.request_url) == request_url
            assert paste_into(target) == request_url

        def paste_key(target) -> None:
            assert copy_from_harbour(w.key) == key
            assert paste_into(target) == key

        ocean_register_integration(ocean, name=integration_name, paste_request_url=paste_request_url,
                                   paste_key=paste_key, shot=self.shot,
                                   doc="sandbox-register-integration" if w.lang == "fr" else None)
        check_accessible(ocean, "en")
        row = ocean.get_by_role("row").filter(has_text=integration_name)
        assert "Referral-Integration-API-Key" in row.inner_text() and "FHIR v0.11.1" in row.inner_text()

        emr.bring_to_front()
        go(emr, button(emr, w.save))
        says(emr, w.nothing_changed)  # the key was saved when generated
        # Still on screen after « Enregistrer les paramètres Ocean » (the article pastes it after
        # saving); once the page is left, never again.
        assert field(emr.locator("#new-key"), w.key).input_value() == key
        emr.goto(emr.url)
        assert key not in emr.content()
        return key

    def listing(self, name: str, integration: str, service_id: str) -> str:
        """Harbour's fifth step (Ocean's directory listing, bound to the integration)."""
        self.ocean.bring_to_front()
        return ocean_add_listing(self.ocean, name=name, integration=integration, service_id=service_id)

    def step4_oauth(self, credential_name: str) -> None:
        """Ocean: Manage OAuth Credentials > Add New Credential; Harbour: paste Client ID and
        Secret, « Enregistrer les paramètres Ocean », refresh, test the connection."""
        w = self.words
        emr, ocean = self.emr, self.ocean
        ocean.bring_to_front()
        ocean_create_oauth_credentials(ocean, credential_name)
        self.shot(ocean, "ocean-oauth-credentials")
        client_id = copy_with(ocean, ocean.locator('[data-copy="#client-id"]'))
        emr.bring_to_front()
        assert paste_into(field(emr, w.client_id)) == client_id
        ocean.bring_to_front()
        secret = copy_with(ocean, ocean.locator('[data-copy="#client-secret"]'))
        emr.bring_to_front()
        assert paste_into(field(emr, w.secret)) == secret
        go(emr, button(emr, w.save))
        says(emr, w.saved)
        emr.reload()
        check_accessible(emr, w.lang)
        assert field(emr, w.client_id).input_value() == client_id
        expect(emr.get_by_label(w.secret_saved, exact=True)).to_be_visible()
        assert secret not in emr.content()

    def check_connection(self) -> str:
        """« Tester la connexion à Ocean »: the message Harbour shows."""
        w = self.words
        self.emr.bring_to_front()
        go(self.emr, button(self.emr, w.test_connection))
        check_accessible(self.emr, w.lang)
        return flash(self.emr)


# --- Referrals in Harbour -----------------------------------------------------------------------

def open_consultations(page, words: Words, tab: str) -> None:
    """Consultations in Harbour's menu, then the Received or Sent tab."""
    menu = page.get_by_role("navigation", name=re.compile("^(Principal|Main)$"))
    go(page, menu.get_by_role("link", name=re.compile(rf"^{re.escape(words.consultations)}\b")))
    go(page, page.locator("nav.tabs").get_by_role("link", name=tab, exact=True))
    check_accessible(page, words.lang)


def wait_for_referral_row(page, text: str, *, timeout: float = 30):
    """Reload the list until a row naming `text` is there (the worker files what Ocean sent)."""
    row = page.get_by_role("row").filter(has_text=text)

    def listed():
        if row.count():
            return True
        page.reload()
        return False

    poll(listed, timeout=timeout, interval=0.3, what=f"a referral row with {text!r}")
    return row


def match_accept_and_book(page, words: Words, *, family: str, chart_number: str, day: str, at: str, shot=None) -> None:
    """On the referral page: link the suggested chart, accept (keyboard only), book an appointment."""
    candidates = page.get_by_role("table", name=words.suggested_charts)
    expect(candidates).to_be_visible()
    go(page, candidates.get_by_role("row").filter(has_text=chart_number).get_by_role("button", name=words.link_chart))
    expect(page.locator("#patient-chart")).to_contain_text(f"{words.linked_to} {chart_number}")
    check_accessible(page, words.lang)

    # Accept with the keyboard alone: Tab to the button, Enter. (The chart review's buttons
    # before it bear the same name, "Accept": `within` tells them apart as the eye does.)
    tab_to(page, words.accept, within="#form-accept")
    go(page, key="Enter")
    expect(page.locator("#referral-status")).to_contain_text(words.accepted)
    check_accessible(page, words.lang)

    page.get_by_text(words.book_an_appointment, exact=True).click()
    booking = page.locator("#form-book")
    field(booking, words.date).fill(day)
    field(booking, words.time).fill(at)
    field(booking, words.confirmed).check()
    if shot:
        shot(page, "harbour-book-appointment")
    go(page, button(booking, words.book))
    expect(page.locator("#referral-status")).to_contain_text(words.booked)
    check_accessible(page, words.lang)


# --- The whole path: the article, then referrals both ways ----------------------------------------

CHART = """
from datetime import date
from harbour.clinics.models import Clinic
from harbour.patients.models import PatientChart
PatientChart.objects.create(clinic=Clinic.objects.get(), chart_number={number!r}, family={family!r}, given={given!r},
                            birth_date=date.fromisoformat({birth!r}))
"""


def the_whole_path(servers, new_context, shot, words: Words, *, locale: str, admin: str, password: str,
                   staff_password: str) -> None:
    """The article's four steps, then: another site refers a patient, a staff user without the
    settings permission matches, accepts and books in Harbour, and the referrer sees the booking
    in Ocean; the clinic refers a patient from Ocean, its copy is in Harbour's Sent list, and the
    receiver's decline shows there."""
    from tests.browser.ocean_peer import decline, receiving_site

    harbour, sandbox = servers
    fr = words.lang == "fr"
    administrator = Administrator(new_context(locale), servers, words, shot, username=admin, password=password)
    administrator.before_the_article("soleil-ocean", "Clinique Soleil")
    administrator.step1_site_number()
    administrator.step2_cloud_connect()
    administrator.step3_inbound_key("Intégration Harbour" if fr else "Harbour integration")
    listing = administrator.listing("Clinique Soleil Physiothérapie", "Intégration Harbour" if fr else "Harbour integration",
                                    "SOLEIL-PHYSIO")
    administrator.step4_oauth("Identifiants OAuth Harbour" if fr else "Harbour OAuth credentials")
    assert words.connection_works in administrator.check_connection()
    shot(administrator.emr, "harbour-settings-done", doc="settings-page" if fr else None)

    # The clinic's chart for the patient exists before the referral (imported from its records).
    harbour.shell(CHART.format(number="SOL-0042", family="Tremblay", given="Marie", birth="1980-02-29"))
    add_staff_user(administrator.emr, words, "accueil-soleil", staff_password)

    # A family practice on Ocean refers Marie Tremblay to the clinic's listing.
    referrer = new_context("en-CA").new_page()
    ocean_sign_up(referrer, sandbox.base_url, "family-practice", password)
    referrer_site = ocean_create_site(referrer, "Family Practice")
    ref = ocean_send_referral(referrer, listing=listing, family="Tremblay", given="Marie", birth_date="1980-02-29",
                              hcn="1234567890", version="AB", reason="Low back pain for two weeks, no red flags")

    # The receptionist has no settings permission: no Settings in the menu, and the page is refused.
    staff = new_context(locale).new_page()
    staff.goto(harbour.base_url + "/")
    sign_in_with_keyboard(staff, words, "accueil-soleil", staff_password)
    menu = staff.get_by_role("navigation", name=re.compile("^(Principal|Main)$"))
    expect(menu.get_by_role("link", name=words.settings, exact=True)).to_have_count(0)
    assert staff.goto(harbour.base_url + SETTINGS_PATH).status == 403
    staff.go_back()

    open_consultations(staff, words, words.received)
    row = wait_for_referral_row(staff, "Tremblay")
    shot(staff, "harbour-received-list", doc="received-list" if fr else None)
    go(staff, row.get_by_role("link", name=re.compile("Tremblay")))
    check_accessible(staff, words.lang)
    expect(staff.locator("main")).to_contain_text(ref)
    day = (date.today() + timedelta(days=14)).isoformat()
    match_accept_and_book(staff, words, family="Tremblay", chart_number="SOL-0042", day=day, at="10:30", shot=shot)

    # In Ocean, the referrer's page of the referral: Booked, on that day at that time.
    referrer.bring_to_front()
    referrer.goto(f"{sandbox.base_url}/site/{referrer_site}/referrals/{ref}/")

    def booked_in_ocean():
        text = referrer.locator("main").inner_text()
        if "Booked" in referrer.locator("#folder").inner_text() and f"{day} 10:30" in text:
            return True
        referrer.reload()
        return False

    poll(booked_in_ocean, timeout=30, what="the booking to reach Ocean")
    check_accessible(referrer, "en")
    shot(referrer, "ocean-referral-booked", doc="sandbox-referral-booked" if fr else None)

    # Back in Harbour, the referral page no longer warns that changes have not reached Ocean.
    staff.bring_to_front()

    def synced_in_harbour():
        if staff.locator("#not-synced").count() == 0:
            return True
        staff.reload()
        return False

    poll(synced_in_harbour, timeout=30, what="Harbour to record the deliveries to Ocean")
    check_accessible(staff, words.lang)
    shot(staff, "harbour-referral-page", doc="referral-page" if fr else None)

    # The clinic refers a patient from Ocean to another site; Harbour keeps the copy under Sent.
    physio = receiving_site(sandbox, "Physiothérapie Lune", "Physiothérapie Lune")
    clinic_ocean = administrator.ocean
    clinic_ocean.bring_to_front()
    sent_ref = ocean_send_referral(clinic_ocean, listing=physio.listing, family="Gagnon", given="Luc",
                                   birth_date="1975-06-15", hcn="2345678901", version="CD",
                                   reason="Physiotherapy after an ankle sprain")
    staff.bring_to_front()
    open_consultations(staff, words, words.sent)
    row = wait_for_referral_row(staff, "Gagnon")

    # The receiver's EMR declines it in Ocean; the decline reaches Harbour's Sent list.
    decline(sandbox, physio, sent_ref, "Waiting list closed")

    def declined_in_harbour():
        if words.declined in row.inner_text():
            return True
        staff.reload()
        return False

    poll(declined_in_harbour, timeout=30, what="the receiver's decline in Harbour's Sent list")
    check_accessible(staff, words.lang)
    shot(staff, "harbour-sent-list-declined", doc="sent-list" if fr else None)
