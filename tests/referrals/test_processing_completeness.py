"""Nothing the payload carries is dropped on the way to the referral (what `harbour inspect` lists
is what processing keeps): every eForm, every file of a document, every message."""
from harbour.intake.jobs import reprocess
from harbour.intake.models import InboundMessage
from harbour.referrals.models import Event, Referral
from tests.referrals import bundles as B

UPDATE = "notify-update-service-request"


def deliver(clinic, *bundles):
    messages = B.deliver(clinic, *bundles)
    assert [(m.state, m.error) for m in messages] == [("processed", "")] * len(messages)
    return messages


def test_every_eform_of_the_referral_is_kept(clinic, site):
    bundle = B.load()
    B.add(bundle, {
        "resourceType": "QuestionnaireResponse", "status": "completed",
        "item": [{"linkId": "extra", "text": "Second form question", "answer": [{"valueString": "second answer"}]}],
    })
    deliver(clinic, bundle)
    answers = list(Referral.objects.get().form_answers.values_list("link_id", "answers"))
    assert ("rfr", "back pain with no red flags") in answers  # the first form, as before
    assert answers[-1] == ("extra", "second answer")
    assert [position for position in Referral.objects.get().form_answers.values_list("position", flat=True)] == \
        list(range(len(answers)))


def test_every_file_of_a_document_is_kept(clinic, site):
    bundle = B.load(B.FULL)
    xray = next(r for r in B.resources(bundle, "DocumentReference")
                if any(i.get("value") == "att-77" for i in r.get("identifier", [])))
    second = dict(xray["content"][0]["attachment"], title="xray-image.jpg", contentType="image/jpeg",
                  url=xray["content"][0]["attachment"]["url"] + "-image")
    xray["content"].append({"attachment": second})
    deliver(clinic, bundle, B.variant(B.FULL, event=UPDATE, timestamp="2030-01-01T00:00:00Z"))
    files = list(Referral.objects.get().attachments.filter(kind="attachment").order_by("id")
                 .values_list("identifier", "title", "removed"))
    assert [(i, t) for i, t, _ in files] == [("att-77", xray["content"][0]["attachment"]["title"]),
                                              ("att-77", "xray-image.jpg")]
    # The next snapshot no longer holds the second file: it is marked removed, not forgotten.
    assert [removed for _, _, removed in files] == [False, True]


def test_a_message_whose_file_has_no_title_is_kept(clinic, site):
    bundle = B.load()
    message = B.communication("unused", "2025-06-02T09:00:00-04:00")
    message["payload"] = [{"contentAttachment": {"url": "https://ocean.example/att/1", "contentType": "application/pdf"}}]
    B.add(bundle, message)
    deliver(clinic, bundle)
    (kept,) = Referral.objects.get().messages.all()
    assert kept.text == "" and kept.attachment_urls == ["https://ocean.example/att/1"]


def test_two_files_sent_apart_in_the_same_second_are_two_messages(clinic, site):
    first, later = B.load(), B.variant(event=UPDATE, timestamp="2030-01-01T00:00:00Z")
    for bundle in (first, later):  # Ocean's bundles are cumulative: the update carries both again
        for title in ("labs-may.pdf", "labs-june.pdf"):
            message = B.communication("unused", "2025-06-02T09:00:00-04:00")
            message["payload"] = [{"contentAttachment": {"title": title, "url": f"https://ocean.example/{title}"}}]
            B.add(bundle, message)
    deliver(clinic, first, later)
    titles = sorted(t for m in Referral.objects.get().messages.all() for t in m.attachment_titles)
    assert titles == ["labs-june.pdf", "labs-may.pdf"]  # both kept, once each (the update repeats them)


def test_a_revoked_status_cancels_whatever_its_case(clinic, site):
    bundle = B.variant(event=UPDATE, timestamp="2030-01-01T00:00:00Z")
    B.resources(bundle, "ServiceRequest")[0]["status"] = "Revoked"
    deliver(clinic, B.load(), bundle)
    assert Referral.objects.get().status == "cancelled"


def test_reprocessing_an_older_message_adds_no_late_arrival(clinic, site):
    first, _ = deliver(clinic, B.load(), B.variant(event=UPDATE, timestamp="2030-01-01T00:00:00Z"))
    before = list(Event.objects.values_list("code", flat=True))
    assert reprocess(InboundMessage.objects.filter(pk=first.pk), now=True) == {"processed": 1}
    assert list(Event.objects.values_list("code", flat=True)) == before


def test_several_eforms_are_named_on_the_referral_page(clinic, site, staff_client):
    from html import unescape

    from django.urls import reverse

    bundle = B.load()
    B.add(bundle, {
        "resourceType": "QuestionnaireResponse", "status": "completed",
        "identifier": {"system": "https://ocean.cognisantmd.com/svc/fhir/v1/id-form-reference", "value": "painScale"},
        "item": [{"linkId": "extra", "text": "Second form question", "answer": [{"valueString": "second answer"}]}],
    })
    deliver(clinic, bundle)
    referral = Referral.objects.get()
    rows = list(referral.form_answers.values_list("form_number", "form"))
    assert rows[0] == (0, "quickReferral") and rows[-1] == (1, "painScale")
    page = unescape(staff_client.get(reverse("referrals:detail", args=[referral.pk]),
                                     HTTP_ACCEPT_LANGUAGE="fr").content.decode())
    first, second = page.index("Formulaire 1"), page.index("Formulaire 2")
    assert first < page.index("back pain with no red flags") < second < page.index("second answer")
    assert 'Formulaire 2 <code class="value">painScale</code>' in page


def test_one_eform_has_no_form_headings(clinic, site, staff_client):
    from django.urls import reverse

    deliver(clinic, B.load())
    referral = Referral.objects.get()
    page = staff_client.get(reverse("referrals:detail", args=[referral.pk]), HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert 'class="form-name"' not in page and "back pain with no red flags" in page
