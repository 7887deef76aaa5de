"""Another clinic on Ocean, outside the article: a receiving site whose EMR declines referrals.

The sandbox's portal has no receiver actions (Ocean's receivers act from their own EMR), so this
site is prepared through the sandbox's admin API and its EMR's decline is a real
$process-messages call with the site's OAuth credentials, built by Harbour's FHIR builder.
"""
from __future__ import annotations

from dataclasses import dataclass

import httpx

from harbour.fhir.build import ReferralContext, TaskUpdate, build_task_message
from tests.servers import admin_api


@dataclass
class ReceivingSite:
    number: str
    listing: str
    client_id: str
    secret: str


def receiving_site(sandbox, name: str, listing_name: str) -> ReceivingSite:
    api = admin_api(sandbox)
    number = api.post("sites", json={"name": name}).raise_for_status().json()["number"]
    key = api.post(f"sites/{number}/encryption-key", json={}).raise_for_status().json()["key"]
    api.post(f"sites/{number}/site-features", json={"cloud_connect": True}).raise_for_status()
    api.post(f"sites/{number}/cloud-connect/key", json={"key": key}).raise_for_status()
    listing = api.post(f"sites/{number}/listings", json={"name": listing_name}).raise_for_status().json()["ref"]
    credential = api.post(f"sites/{number}/oauth-credentials", json={"name": "EMR"}).raise_for_status().json()
    return ReceivingSite(number, listing, credential["client_id"], credential["secret"])


def decline(sandbox, site: ReceivingSite, ref: str, reason: str) -> None:
    """The receiving site's EMR declines referral `ref` through Ocean's API."""
    with httpx.Client(base_url=sandbox.base_url, timeout=30) as http:
        token = http.post("/svc/oauth2/token", data={
            "grant_type": "client_credentials", "client_id": site.client_id, "client_secret": site.secret,
        }).raise_for_status().json()["access_token"]
        context = ReferralContext(ocean_base_url=sandbox.base_url, referral_ref=ref,
                                  harbour_url="https://emr.receiver.example", site_number=site.number)
        bundle = build_task_message(context, TaskUpdate(status="rejected", reason=reason), first=True)
        response = http.post("/svc/fhir/v1/$process-messages", json=bundle, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text
