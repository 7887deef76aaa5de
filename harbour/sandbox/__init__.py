"""The Ocean sandbox: a local simulator of Ocean's side of the eReferral integration.

It is a product feature (EMR developers and clinics rehearse the setup with it), served as a
separate server (`harbour sandbox --port 8081`) with its own settings and database; Harbour
reaches it only over HTTP, exactly as it would reach https://ocean.cognisantmd.com.

The sandbox imitates Ocean, whose portal is in English: its pages and messages are English
only, on purpose, so this app has no translation catalogue.

Modules: models (the Ocean-side state), sites (portal setup steps), referrals (referral
actions and the EMR event rules), bundles (message bundles like Ocean's), delivery (the webhook
queue and Ocean's retry schedule), oauth and fhir_api (Ocean's API), letters (the $letter PDF),
api (the JSON admin API), views/forms/templates (the portal pages).
"""
