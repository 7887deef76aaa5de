"""Layout: a long unbroken string people typed (e.g. a URL in the patient instructions) wraps inside
its panel instead of widening the referral page. The page Django renders, with harbour.css inlined,
measured in Debian's chromium (no server: the HTML is set on a blank page)."""
import shutil
from datetime import timedelta
from pathlib import Path

from django.urls import reverse
from django.utils import timezone

from harbour.referrals.models import Appointment, CommunicationMessage
from tests.ocean.conftest import configure, make_referral

CSS = Path(__file__).resolve().parents[2] / "harbour/core/static/harbour/harbour.css"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LONG = "https://example.org/" + "a" * 1200


def measure(html: str, width: int = 1280) -> dict:
    from playwright.sync_api import sync_playwright

    # Nothing touches the database in here: Playwright's loop runs in this thread while the block lasts.
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.set_content(html, wait_until="domcontentloaded")
            return page.evaluate("""() => ({
                page: document.documentElement.scrollWidth,
                instructions: document.querySelector('#h-appointments').parentElement.scrollWidth,
            })""")
        finally:
            browser.close()


def test_a_long_string_in_the_instructions_does_not_widen_the_page(staff_client, clinic):
    configure(clinic, "https://ocean.example.org")
    referral = make_referral(clinic, status="booked", reason="See " + LONG)
    start = timezone.now() + timedelta(days=2)
    Appointment.objects.create(referral=referral, status="booked", start=start, end=start + timedelta(minutes=30),
                               minutes=30, participant_status="accepted", confirmed=True,
                               patient_instruction="Directions: " + LONG, location=LONG[:200])
    CommunicationMessage.objects.create(referral=referral, direction="from_referrer", text=LONG, dedupe_key="m1")
    html = staff_client.get(reverse("referrals:detail", args=[referral.pk])).content.decode()
    html = html.replace('<link rel="stylesheet" href="/static/harbour/harbour.css">',
                        f"<style>{CSS.read_text()}</style>")
    assert "<style>" in html  # the stylesheet really is the one measured
    sizes = measure(html)
    assert sizes["page"] <= 1280, sizes
    assert sizes["instructions"] <= 1100, sizes
