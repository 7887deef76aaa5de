"""The same path in English: the administrator's browser asks for English (Accept-Language)."""
import pytest

from tests.browser.article import EN, the_whole_path
from tests.browser.conftest import ADMIN, PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.servers, pytest.mark.timeout(180)]


def test_the_article_in_english_then_referrals_both_ways(servers, new_context, shot):
    the_whole_path(servers, new_context, shot, EN, locale="en-CA", admin=ADMIN, password=PASSWORD,
                   staff_password="Front-desk-Soleil-2024-password")
