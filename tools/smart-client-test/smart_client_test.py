#!/usr/bin/env python3
"""A SMART standalone launch against a running oxehr, driven by a real SMART client.

The client is the `fhirclient` library (smart-on-fhir/client-py), which reads the OAuth
endpoints from the server's CapabilityStatement, builds the authorization URL (with a
PKCE S256 challenge and `launch/patient`), exchanges the code and signs FHIR requests.
`requests` stands in for the person's browser: it opens the sign-in page, posts the
sign-in and consent forms, and hands the redirect back to the library.

The script then reads the patient's Observations through the library and checks that
every one of them belongs to that patient, that another patient's record is closed to
it, and that the refresh token works. It prints one JSON line on success:
{"patient": "<id>", "observations": <count>}; anything else exits non-zero.

    OXEHR_TEST_PASSWORD=... python3 smart_client_test.py --fhir-base http://127.0.0.1:8080/fhir \\
        --client-id my-app --redirect-uri http://127.0.0.1:9/callback --user alice

The password comes from the environment, so that it is not in the process list.
"""

import argparse
import html
import json
import os
import re
import sys

import requests
from fhirclient import client, server
from fhirclient.models.observation import Observation
from fhirclient.models.patient import Patient


def form_field(page, pattern, what):
    match = re.search(pattern, page)
    if match is None:
        raise SystemExit(f"no {what} on the page")
    return html.unescape(match.group(1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fhir-base", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--redirect-uri", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument(
        "--other-patient", help="a patient id whose record must stay closed to the app"
    )
    args = parser.parse_args()
    password = os.environ.get("OXEHR_TEST_PASSWORD")
    if not password:
        raise SystemExit("set OXEHR_TEST_PASSWORD")

    smart = client.FHIRClient(
        settings={
            "app_id": args.client_id,
            "api_base": args.fhir_base,
            "redirect_uri": args.redirect_uri,
            # The library adds launch/patient, since no patient is known yet.
            "scope": "patient/*.read offline_access",
        }
    )
    authorize_url = smart.authorize_url
    if "code_challenge_method=S256" not in authorize_url:
        raise SystemExit("the library did not ask for PKCE S256")

    browser = requests.Session()
    page = browser.get(authorize_url, allow_redirects=False)
    if page.status_code != 200:
        raise SystemExit(f"the sign-in page answered {page.status_code}")
    action = form_field(page.text, r'<form method="post" action="([^"]+)"', "form")
    handle = form_field(page.text, r'name="handle" value="([^"]+)"', "sign-in handle")
    page = browser.post(
        action,
        data={
            "handle": handle,
            "username": args.user,
            "password": password,
            "totp": "",
            "action": "login",
        },
        allow_redirects=False,
    )
    if page.status_code != 200 or 'value="approve"' not in page.text:
        raise SystemExit(f"signing in answered {page.status_code}")
    handle = form_field(page.text, r'name="handle" value="([^"]+)"', "consent handle")
    redirect = browser.post(
        action, data={"handle": handle, "action": "approve"}, allow_redirects=False
    )
    location = redirect.headers.get("Location", "")
    if redirect.status_code != 303 or not location.startswith(args.redirect_uri):
        raise SystemExit(f"the consent answered {redirect.status_code}, not a redirect to the app")

    # The library checks `state`, exchanges the code with its PKCE verifier and keeps
    # the access token, the refresh token and the patient in context.
    smart.handle_callback(location)
    if not smart.ready or not smart.patient_id:
        raise SystemExit("no access token or no patient in context")
    patient_id = smart.patient_id
    patient = smart.patient
    if patient is None or patient.id != patient_id:
        raise SystemExit("the patient in context cannot be read")

    expected = f"Patient/{patient_id}"
    counts = []
    for search in (Observation.where({"patient": patient_id}), Observation.where({})):
        observations = list(search.perform_resources_iter(smart.server))
        if not observations:
            raise SystemExit("no Observations")
        for obs in observations:
            if obs.subject is None or obs.subject.reference != expected:
                raise SystemExit(f"Observation/{obs.id} is not {expected}'s")
        counts.append(len(observations))
    if counts[0] != counts[1]:
        raise SystemExit(f"{counts[1]} Observations in all, {counts[0]} of the patient's")

    if args.other_patient:
        try:
            Patient.read(args.other_patient, smart.server)
        except (server.FHIRPermissionDeniedException, server.FHIRNotFoundException):
            pass
        else:
            raise SystemExit("another patient's record is open to the app")

    # offline_access: the refresh token gets a new access token (and a new refresh token).
    old = smart.server.auth.access_token
    old_refresh = smart.server.auth.refresh_token
    if not smart.reauthorize() or smart.server.auth.access_token == old:
        raise SystemExit("the refresh token did not give a new access token")
    if smart.server.auth.refresh_token == old_refresh:
        raise SystemExit("the refresh token was not rotated")
    Patient.read(patient_id, smart.server)

    print(json.dumps({"patient": patient_id, "observations": counts[0]}))


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except Exception as e:  # the library's errors: say what, exit non-zero
        print(f"smart client test failed: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
