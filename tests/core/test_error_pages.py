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


def test_a_host_not_allowed_gets_a_translated_400_page_that_does_not_repeat_it(settings):
    settings.ALLOWED_HOSTS = ["soleil.example.org"]
    response = Client(HTTP_HOST="autre.example").get("/referrals/", HTTP_ACCEPT_LANGUAGE="fr")
    assert response.status_code == 400
    body = response.content.decode()
    assert "<h1>Demande refusée</h1>" in body and '<html lang="fr">' in body
    assert "l'adresse habituelle de votre clinique" in body
    assert "autre.example" not in body


def test_another_refused_request_gets_the_400_page_without_the_address_advice(settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 2
    response = Client(HTTP_HOST="soleil.example.org").post(
        "/accounts/login/", {"a": "1", "b": "2", "c": "3"}, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert "<h1>Request refused</h1>" in body and "Nothing was changed." in body
    assert "usual address" not in body
