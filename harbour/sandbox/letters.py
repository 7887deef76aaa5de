"""The referral letter ($letter): a real PDF summary, with the attachments appended on request.

fpdf2 writes the summary; pypdf appends PDF attachments. Images are placed on their own page;
other files are listed (they remain available through $binary).
"""
import io

from django.utils import timezone
from fpdf import FPDF
from pypdf import PdfReader, PdfWriter
from pypdf.errors import PdfReadError

from harbour.sandbox.models import Referral

IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif"}


def _latin1(text) -> str:
    # The core PDF fonts cover Latin-1 (French accents included); anything else becomes '?'.
    return str(text or "").encode("latin-1", "replace").decode("latin-1")


class _Letter(FPDF):
    def line_pair(self, label: str, value) -> None:
        self.set_font("Helvetica", "B", 10)
        self.cell(50, 6, _latin1(label))
        self.set_font("Helvetica", "", 10)
        self.multi_cell(0, 6, _latin1(value) or "-", new_x="LMARGIN", new_y="NEXT")

    def heading(self, text: str) -> None:
        self.ln(3)
        self.set_font("Helvetica", "B", 12)
        self.cell(0, 8, _latin1(text), new_x="LMARGIN", new_y="NEXT")


def letter_pdf(referral: Referral, *, with_attachments: bool = False) -> bytes:
    pdf = _Letter(format="Letter")
    pdf.set_title(f"eReferral {referral.ref}")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, "eReferral (Ocean sandbox)", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    pdf.cell(0, 5, _latin1(f"Referral {referral.ref}"), new_x="LMARGIN", new_y="NEXT")
    p, r = referral.patient, referral.referrer
    pdf.heading("Patient")
    pdf.line_pair("Name", " ".join(x for x in [p.get("given"), p.get("family")] if x))
    pdf.line_pair("Birth date", p.get("birth_date"))
    pdf.line_pair("Sex", p.get("gender"))
    pdf.line_pair("Health card", " ".join(x for x in [p.get("hcn"), p.get("version_code")] if x))
    pdf.line_pair("Phone", p.get("phone"))
    pdf.line_pair("Email", p.get("email"))
    pdf.heading("Referral")
    pdf.line_pair("From", f"{' '.join(x for x in [r.get('given'), r.get('family')] if x)} (site {referral.sender_site.number})")
    pdf.line_pair("To", f"{referral.target_listing.name} (site {referral.receiver_site.number})")
    pdf.line_pair("Sent", timezone.localtime(referral.authored_on).strftime("%Y-%m-%d %H:%M"))
    pdf.line_pair("Priority", referral.priority)
    pdf.line_pair("Status", referral.get_folder_display())
    pdf.line_pair("Reason for referral", referral.reason)
    answered = [a for a in referral.form_answers if a.get("answer") and not a.get("hidden")]
    if answered:
        pdf.heading("Form")
        for answer in answered:
            pdf.line_pair(answer.get("text") or answer["link_id"], answer["answer"])
    attachments = list(referral.attachments.all())
    if attachments:
        pdf.heading("Attachments")
        for attachment in attachments:
            pdf.line_pair(attachment.title, f"{attachment.content_type}, {len(attachment.data)} bytes")
    if with_attachments:
        for attachment in attachments:
            if attachment.content_type in IMAGE_TYPES:
                pdf.add_page()
                pdf.heading(attachment.title)
                try:
                    pdf.image(io.BytesIO(bytes(attachment.data)), w=pdf.epw)
                except Exception:  # an unreadable image still leaves a readable letter
                    pdf.line_pair("Image", "could not be rendered")
    summary = bytes(pdf.output())
    if not with_attachments:
        return summary
    writer = PdfWriter()
    writer.append(PdfReader(io.BytesIO(summary)))
    for attachment in attachments:
        if attachment.content_type == "application/pdf":
            try:
                writer.append(PdfReader(io.BytesIO(bytes(attachment.data))))
            except (PdfReadError, ValueError, OSError):
                continue  # listed on the summary page; still fetchable through $binary
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
