from django.test import Client, override_settings


def test_unknown_page_is_a_translated_404(staff_client):
    response = staff_client.get("/referrals/999999999/", HTTP_ACCEPT_LANGUAGE="fr")
    assert response.status_code == 404
    body = response.content.decode()
    assert "Cette page n'existe pas, ou elle appartient à une autre clinique." in body and '<html lang="fr">' in body


def test_server_error_page_is_translated_and_reveals_nothing(staff_user):
    client = Client(HTTP_HOST="soleil.example.org", raise_request_exception=False)
    client.force_login(staff_user)
    with override_settings(ROOT_URLCONF="tests.core.boom_urls"):
        response = client.get("/boom/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 500
    body = response.content.decode()
    assert "Something went wrong" in body and "Nothing you sent was lost" in body
    assert "secret-detail" not in body and "Traceback" not in body
