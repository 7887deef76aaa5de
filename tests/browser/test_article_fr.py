"""The clinic administrator follows the French article in a browser, click by click, across
Harbour and the Ocean sandbox; then referrals travel both ways."""
import pytest

from tests.browser.article import FR, Administrator
from tests.browser.conftest import ADMIN, PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.servers, pytest.mark.timeout(180)]


def test_the_article_in_french(servers, new_context, shot):
    admin = Administrator(new_context("fr-CA"), servers, FR, shot, username=ADMIN, password=PASSWORD)
    admin.before_the_article("soleil-ocean", "Clinique Soleil")
    admin.step1_site_number()
    admin.step2_cloud_connect()
    admin.step3_inbound_key("Intégration Harbour")
    admin.listing("Clinique Soleil Physiothérapie", "Intégration Harbour", "SOLEIL-PHYSIO")
    admin.step4_oauth("Identifiants OAuth Harbour")
