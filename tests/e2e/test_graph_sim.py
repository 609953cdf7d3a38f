"""End-to-end checks of the Graph simulator against real clients (msal, requests, curl).

The simulator runs once per module with a CA made at test time; each test reloads the fixture,
clears faults and restores the default settings.
"""

import base64
import concurrent.futures
import hashlib
import json
import subprocess
import time
import urllib.parse
import uuid

import jwt
import msal
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from simhelpers_graph import GraphSim, make_test_ca

TENANT = "8d1c0000-0000-4000-8000-00000000c0de"
APP_ID = "11111111-2222-3333-4444-555555555555"
SECRET = "s3cret~value.with+specials"
ODD_ID = "<CAF+x9=Q/a'b#c&d%e@mail.example.net>"
GRAPH_SCOPE = ["https://graph.microsoft.com/.default"]


def make_fixture(cert_pem):
    return {
        "tenants": [{"id": TENANT, "domains": ["corp.example"]}],
        "apps": [
            {"client_id": APP_ID, "client_secret": SECRET, "certificates": [cert_pem]},
            {"client_id": "scoped-app", "client_secret": "scoped", "mailbox_scope": ["alice@corp.example"]},
        ],
        "mailboxes": [
            {"address": "Alice@corp.example", "aliases": ["a.smith@corp.example"],
             "folders": ["inbox/Quarantine"],
             "messages": [
                 {"internetMessageId": ODD_ID, "subject": "Invoice"},
                 {"internetMessageId": "<dup@x.example>", "folder": "inbox"},
                 {"internetMessageId": "<dup@x.example>", "folder": "junkemail"},
                 {"internetMessageId": "<dup@x.example>", "folder": "inbox/Quarantine"},
             ]},
            {"address": "bob@corp.example", "messages": [{"internetMessageId": "<b1@x.example>"}]},
            {"address": "onprem@corp.example", "rest_enabled": False},
        ],
    }


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_test_ca(tmp_path_factory.mktemp("graph-ca"), "app1", "other")


@pytest.fixture(scope="module")
def server(certs):
    sim = GraphSim(certs)
    yield sim
    sim.stop()


@pytest.fixture
def sim(server, certs):
    server.load_fixture(make_fixture((certs / "app1.pem").read_text()))
    server.control("DELETE", "faults")
    defaults = {"latency_ms": 0, "token_lifetime_s": 3599, "limits": True, "mailbox_concurrency": 4,
                "mailbox_rate": 10000, "mailbox_window_s": 600, "global_rate": 130000,
                "global_window_s": 10, "page_size": 10, "max_page_size": 1000,
                "delete_target": "deleteditems", "permanent_delete": True,
                "unknown_user_code": "ResourceNotFound"}
    server.configure(**defaults)
    server.control("POST", "reset-log")
    return server


def token_for(sim, client_id=APP_ID, secret=SECRET):
    response = sim.session.post(f"{sim.url}/{TENANT}/oauth2/v2.0/token", data={
        "client_id": client_id, "client_secret": secret, "grant_type": "client_credentials",
        "scope": GRAPH_SCOPE[0]}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


class Graph:
    """Minimal Graph client over requests, with the encoding rules clawback follows."""

    def __init__(self, sim, token=None, immutable=False):
        self.sim = sim
        self.headers = {"Authorization": f"Bearer {token or token_for(sim)}"}
        if immutable:
            self.headers["Prefer"] = 'IdType="ImmutableId"'

    def call(self, method, path, body=None, timeout=10, headers=None):
        return self.sim.session.request(method, f"{self.sim.url}/v1.0{path}", json=body, timeout=timeout,
                                        headers={**self.headers, **(headers or {})})

    def search_path(self, mailbox, message_id, folder=None, top=None):
        literal = "'" + message_id.replace("'", "''") + "'"
        query = "$filter=" + urllib.parse.quote(f"internetMessageId eq {literal}", safe="")
        query += "&$select=id,parentFolderId,internetMessageId,subject"
        if top:
            query += f"&$top={top}"
        base = f"/users/{urllib.parse.quote(mailbox)}"
        if folder:
            base += f"/mailFolders/{folder}"
        return f"{base}/messages?{query}"

    def search(self, mailbox, message_id, folder=None):
        response = self.call("GET", self.search_path(mailbox, message_id, folder))
        assert response.status_code == 200, response.text
        return response.json()["value"]


def graph_error(response):
    return response.json()["error"]["code"]


def folder_of(sim, mailbox, immutable_id):
    for message in sim.state(mailbox)["mailboxes"][0]["messages"]:
        if message["immutableId"] == immutable_id:
            return message["folder"]
    raise AssertionError(f"message {immutable_id} not in state")


# ----------------------------------------------------------------------------------------------
# Token endpoint


def msal_app(sim, credential, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", sim.ca)
    return msal.ConfidentialClientApplication(
        APP_ID, client_credential=credential, authority=f"{sim.url}/{TENANT}",
        validate_authority=False, instance_discovery=False)


def test_msal_secret_token_works_on_graph(sim, monkeypatch):
    result = msal_app(sim, SECRET, monkeypatch).acquire_token_for_client(scopes=GRAPH_SCOPE)
    assert "access_token" in result, result
    assert result["token_type"] == "Bearer"
    response = Graph(sim, token=result["access_token"]).call("GET", "/users/alice@corp.example/mailFolders")
    assert response.status_code == 200


def test_msal_wrong_secret_fails(sim, monkeypatch):
    result = msal_app(sim, "wrong", monkeypatch).acquire_token_for_client(scopes=GRAPH_SCOPE)
    assert result.get("error") == "invalid_client"
    assert result.get("error_codes") == [7000215]
    assert "AADSTS7000215" in result["error_description"]


def test_msal_certificate_token(sim, certs, monkeypatch):
    cert = x509.load_pem_x509_certificate((certs / "app1.pem").read_bytes())
    thumbprint = cert.fingerprint(cert.signature_hash_algorithm.__class__()).hex()
    sha1 = hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    assert thumbprint == sha1 or len(thumbprint) != 40
    credential = {"private_key": (certs / "app1.key").read_text(), "thumbprint": sha1}
    result = msal_app(sim, credential, monkeypatch).acquire_token_for_client(scopes=GRAPH_SCOPE)
    assert "access_token" in result, result
    log = sim.log()
    token_requests = [e for e in log if e["path"].endswith("/oauth2/v2.0/token")]
    assert token_requests[-1]["credential"] == "assertion"


def make_assertion(sim, certs, key_name="app1", cert_name="app1", alg="PS256", **overrides):
    cert_der = x509.load_pem_x509_certificate((certs / f"{cert_name}.pem").read_bytes()).public_bytes(
        serialization.Encoding.DER)
    key = (certs / f"{key_name}.key").read_bytes()
    now = int(time.time())
    claims = {"aud": f"{sim.url}/{TENANT}/oauth2/v2.0/token", "iss": APP_ID, "sub": APP_ID,
              "jti": str(uuid.uuid4()), "nbf": now, "exp": now + 600}
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    if alg == "PS256":
        header = {"x5t#S256": base64.urlsafe_b64encode(hashlib.sha256(cert_der).digest()).decode().rstrip("=")}
    else:
        header = {"x5t": base64.urlsafe_b64encode(hashlib.sha1(cert_der).digest()).decode().rstrip("=")}
    return jwt.encode(claims, key, algorithm=alg, headers=header)


def post_assertion(sim, assertion):
    return sim.session.post(f"{sim.url}/{TENANT}/oauth2/v2.0/token", data={
        "client_id": APP_ID, "grant_type": "client_credentials", "scope": GRAPH_SCOPE[0],
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion}, timeout=10)


@pytest.mark.parametrize("alg", ["PS256", "RS256"])
def test_assertion_accepted(sim, certs, alg):
    response = post_assertion(sim, make_assertion(sim, certs, alg=alg))
    assert response.status_code == 200, response.text
    assert response.json()["expires_in"] == 3599


@pytest.mark.parametrize("case,overrides,code", [
    ("wrong audience", {"aud": "https://login.microsoftonline.com/x/oauth2/v2.0/token"}, 50012),
    ("expired", {"exp": int(time.time()) - 3600, "nbf": int(time.time()) - 7200}, 700024),
    ("not yet valid", {"nbf": int(time.time()) + 3600, "exp": int(time.time()) + 4000}, 700024),
    ("issuer differs", {"iss": "someone-else"}, 700021),
    ("missing jti", {"jti": None}, 50027),
])
def test_assertion_rejected(sim, certs, case, overrides, code):
    response = post_assertion(sim, make_assertion(sim, certs, **overrides))
    assert response.status_code == 401, case
    assert response.json()["error"] == "invalid_client"
    assert response.json()["error_codes"] == [code], case


def test_assertion_signed_by_other_key(sim, certs):
    response = post_assertion(sim, make_assertion(sim, certs, key_name="other", cert_name="app1"))
    assert response.status_code == 401
    assert response.json()["error_codes"] == [700027]


def test_assertion_unregistered_certificate(sim, certs):
    response = post_assertion(sim, make_assertion(sim, certs, key_name="other", cert_name="other"))
    assert response.status_code == 401
    assert "The key was not found" in response.json()["error_description"]


def test_token_request_errors(sim):
    url = f"{sim.url}/{TENANT}/oauth2/v2.0/token"
    base = {"client_id": APP_ID, "client_secret": SECRET, "grant_type": "client_credentials", "scope": GRAPH_SCOPE[0]}
    unknown_app = sim.session.post(url, data={**base, "client_id": "nope"}, timeout=10)
    assert unknown_app.status_code == 400
    assert unknown_app.json()["error_codes"] == [700016]
    bad_scope = sim.session.post(url, data={**base, "scope": "Mail.ReadWrite"}, timeout=10)
    assert bad_scope.json()["error"] == "invalid_scope"
    bad_tenant = sim.session.post(f"{sim.url}/nowhere.example/oauth2/v2.0/token", data=base, timeout=10)
    assert bad_tenant.json()["error_codes"] == [90002]
    basic = sim.session.post(url, data={"grant_type": "client_credentials", "scope": GRAPH_SCOPE[0]},
                             auth=(APP_ID, SECRET), timeout=10)
    assert basic.status_code == 200, basic.text


def test_expired_token_gets_401(sim):
    sim.configure(token_lifetime_s=1)
    graph = Graph(sim)
    time.sleep(1.5)
    response = graph.call("GET", "/users/alice@corp.example/mailFolders")
    assert response.status_code == 401
    assert graph_error(response) == "InvalidAuthenticationToken"
    assert "expired" in response.json()["error"]["message"]


def test_missing_and_foreign_tokens(sim):
    no_token = sim.session.get(f"{sim.url}/v1.0/users/alice@corp.example/messages", timeout=10)
    assert no_token.status_code == 401
    forged = Graph(sim, token="eyJ0eXAiOiJKV1QifQ.eyJhdWQiOiJ4In0.c2lnbmF0dXJl")
    assert forged.call("GET", "/users/alice@corp.example/messages").status_code == 401


# ----------------------------------------------------------------------------------------------
# Search, paging, ids


def test_search_finds_odd_message_id(sim):
    hits = Graph(sim).search("alice@corp.example", ODD_ID)
    assert [h["internetMessageId"] for h in hits] == [ODD_ID]


def test_unencoded_plus_finds_nothing(sim):
    literal = "'" + ODD_ID.replace("'", "''") + "'"
    # Encode everything except '+', which then decodes to a space, as on Graph.
    query = urllib.parse.quote(f"internetMessageId eq {literal}", safe="+")
    response = Graph(sim).call("GET", f"/users/alice@corp.example/messages?$filter={query}")
    assert response.status_code == 200
    assert response.json()["value"] == []


def test_unescaped_quote_is_rejected(sim):
    query = urllib.parse.quote("internetMessageId eq '<a'b@x>'", safe="")
    response = Graph(sim).call("GET", f"/users/alice@corp.example/messages?$filter={query}")
    assert response.status_code == 400


def test_paging_follows_next_link(sim):
    graph = Graph(sim)
    response = graph.call("GET", graph.search_path("alice@corp.example", "<dup@x.example>", top=2))
    first = response.json()
    assert len(first["value"]) == 2
    next_link = first["@odata.nextLink"]
    second = sim.session.get(next_link, headers=graph.headers, timeout=10).json()
    assert len(second["value"]) == 1
    assert "@odata.nextLink" not in second
    ids = {m["id"] for m in first["value"] + second["value"]}
    assert len(ids) == 3


def test_mailbox_lookup_is_case_insensitive_and_by_alias(sim):
    graph = Graph(sim)
    assert len(graph.search("ALICE@Corp.Example", ODD_ID)) == 1
    assert len(graph.search("a.smith@corp.example", ODD_ID)) == 1


def test_select_unknown_property(sim):
    response = Graph(sim).call("GET", "/users/alice@corp.example/messages?$select=nosuchthing")
    assert response.status_code == 400


def test_move_with_immutable_id_keeps_id(sim):
    graph = Graph(sim, immutable=True)
    hit = graph.search("alice@corp.example", ODD_ID)[0]
    response = graph.call("POST", f"/users/alice@corp.example/messages/{hit['id']}/move", {"destinationId": "junkemail"})
    assert response.status_code == 201
    assert response.headers["Preference-Applied"] == 'IdType="ImmutableId"'
    assert response.json()["id"] == hit["id"]
    assert folder_of(sim, "alice@corp.example", hit["id"]) == "junkemail"
    again = graph.call("GET", f"/users/alice@corp.example/messages/{hit['id']}")
    assert again.status_code == 200


def test_move_without_immutable_id_changes_id(sim):
    graph = Graph(sim)
    hit = graph.search("alice@corp.example", ODD_ID)[0]
    response = graph.call("POST", f"/users/alice@corp.example/messages/{hit['id']}/move", {"destinationId": "deleteditems"})
    assert response.status_code == 201
    assert response.json()["id"] != hit["id"]
    stale = graph.call("POST", f"/users/alice@corp.example/messages/{hit['id']}/move", {"destinationId": "inbox"})
    assert stale.status_code == 404
    assert graph_error(stale) == "ErrorItemNotFound"


def test_unknown_ids(sim):
    graph = Graph(sim)
    missing = graph.call("DELETE", "/users/alice@corp.example/messages/AAMkAGI2TG93AAAnonexistentitemid0000=")
    assert missing.status_code == 404
    assert graph_error(missing) == "ErrorItemNotFound"
    hit = graph.search("alice@corp.example", ODD_ID)[0]
    bad_folder = graph.call("POST", f"/users/alice@corp.example/messages/{hit['id']}/move", {"destinationId": "AAMkAGI2TG93AAAnonexistentfolder0="})
    assert bad_folder.status_code == 404


def test_delete_goes_to_deleted_items_then_recoverable(sim):
    graph = Graph(sim, immutable=True)
    hit = graph.search("alice@corp.example", ODD_ID)[0]
    assert graph.call("DELETE", f"/users/alice@corp.example/messages/{hit['id']}").status_code == 204
    assert folder_of(sim, "alice@corp.example", hit["id"]) == "deleteditems"
    assert graph.call("DELETE", f"/users/alice@corp.example/messages/{hit['id']}").status_code == 204
    assert folder_of(sim, "alice@corp.example", hit["id"]) == "recoverableitemsdeletions"
    assert graph.search("alice@corp.example", ODD_ID) == []
    recovered = graph.search("alice@corp.example", ODD_ID, folder="recoverableitemsdeletions")
    assert [m["id"] for m in recovered] == [hit["id"]]
    third = graph.call("DELETE", f"/users/alice@corp.example/messages/{hit['id']}")
    assert graph_error(third) == "ErrorCannotDeleteObject"


def test_delete_target_recoverable_setting(sim):
    sim.configure(delete_target="recoverableitemsdeletions")
    graph = Graph(sim, immutable=True)
    hit = graph.search("alice@corp.example", ODD_ID)[0]
    assert graph.call("DELETE", f"/users/alice@corp.example/messages/{hit['id']}").status_code == 204
    assert folder_of(sim, "alice@corp.example", hit["id"]) == "recoverableitemsdeletions"


def test_permanent_delete_purges(sim):
    graph = Graph(sim, immutable=True)
    hit = graph.search("alice@corp.example", ODD_ID)[0]
    response = graph.call("POST", f"/users/alice@corp.example/messages/{hit['id']}/permanentDelete")
    assert response.status_code == 204
    assert graph.search("alice@corp.example", ODD_ID) == []
    assert graph.search("alice@corp.example", ODD_ID, folder="recoverableitemsdeletions") == []
    assert graph.call("GET", f"/users/alice@corp.example/messages/{hit['id']}").status_code == 404
    state = sim.state("alice@corp.example")["mailboxes"][0]
    purged = [m for m in state["messages"] if m["purged"]]
    assert [m["immutableId"] for m in purged] == [hit["id"]]
    stats = sim.stats()
    assert stats["mailboxes"]["Alice@corp.example"]["permanent_deletes"] == 1
    assert stats["messages_acted_on_more_than_once"] == []


def test_permanent_delete_disabled(sim):
    sim.configure(permanent_delete=False)
    graph = Graph(sim)
    hit = graph.search("alice@corp.example", ODD_ID)[0]
    response = graph.call("POST", f"/users/alice@corp.example/messages/{hit['id']}/permanentDelete")
    assert response.status_code == 400
    assert "permanentDelete" in response.json()["error"]["message"]


def test_stats_count_repeated_moves(sim):
    graph = Graph(sim, immutable=True)
    hit = graph.search("bob@corp.example", "<b1@x.example>")[0]
    for destination in ("junkemail", "inbox"):
        graph.call("POST", f"/users/bob@corp.example/messages/{hit['id']}/move", {"destinationId": destination})
    twice = sim.stats()["messages_acted_on_more_than_once"]
    assert [m["internetMessageId"] for m in twice] == ["<b1@x.example>"]
    assert twice[0]["moves"] == 2


# ----------------------------------------------------------------------------------------------
# Folders


def test_child_folders_filter_and_create(sim):
    graph = Graph(sim)
    query = "$filter=" + urllib.parse.quote("displayName eq 'quarantine'", safe="")
    found = graph.call("GET", f"/users/alice@corp.example/mailFolders/inbox/childFolders?{query}").json()["value"]
    assert [f["displayName"] for f in found] == ["Quarantine"]
    created = graph.call("POST", f"/users/alice@corp.example/mailFolders/{found[0]['id']}/childFolders", {"displayName": "Phish"})
    assert created.status_code == 201
    duplicate = graph.call("POST", f"/users/alice@corp.example/mailFolders/{found[0]['id']}/childFolders", {"displayName": "phish"})
    assert duplicate.status_code == 409
    assert graph_error(duplicate) == "ErrorFolderExists"
    hit = graph.search("alice@corp.example", ODD_ID)[0]
    moved = graph.call("POST", f"/users/alice@corp.example/messages/{hit['id']}/move", {"destinationId": created.json()["id"]})
    assert moved.status_code == 201
    assert moved.json()["parentFolderId"] == created.json()["id"]
    paths = {f["path"] for f in sim.state("alice@corp.example")["mailboxes"][0]["folders"]}
    assert "Inbox/Quarantine/Phish" in paths


def test_top_level_folders_hide_recoverable_items(sim):
    names = [f["displayName"] for f in Graph(sim).call("GET", "/users/alice@corp.example/mailFolders?$top=50").json()["value"]]
    assert "Inbox" in names
    assert "Deletions" not in names


# ----------------------------------------------------------------------------------------------
# Mailbox errors


def test_unknown_mailbox(sim):
    response = Graph(sim).call("GET", "/users/nobody@corp.example/messages")
    assert response.status_code == 404
    assert graph_error(response) == "ResourceNotFound"
    sim.configure(unknown_user_code="ErrorInvalidUser")
    assert graph_error(Graph(sim).call("GET", "/users/nobody@corp.example/messages")) == "ErrorInvalidUser"


def test_mailbox_not_enabled_for_rest(sim):
    response = Graph(sim).call("GET", "/users/onprem@corp.example/messages")
    assert response.status_code == 404
    assert graph_error(response) == "MailboxNotEnabledForRESTAPI"


def test_application_access_policy(sim):
    graph = Graph(sim, token=token_for(sim, "scoped-app", "scoped"))
    assert graph.call("GET", "/users/alice@corp.example/mailFolders").status_code == 200
    denied = graph.call("GET", "/users/bob@corp.example/mailFolders")
    assert denied.status_code == 403
    assert graph_error(denied) == "ErrorAccessDenied"


# ----------------------------------------------------------------------------------------------
# Limits


def test_mailbox_concurrency_limit(sim):
    sim.configure(latency_ms=700)
    token = token_for(sim)

    def one(_):
        return sim.new_session().get(f"{sim.url}/v1.0/users/alice@corp.example/mailFolders",
                           headers={"Authorization": f"Bearer {token}"}, timeout=30)

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(one, range(8)))
    ok = [r for r in responses if r.status_code == 200]
    throttled = [r for r in responses if r.status_code == 429]
    assert len(ok) + len(throttled) == 8
    assert len(ok) <= 4
    assert throttled, "expected at least one 429"
    assert all(graph_error(r) == "ApplicationThrottled" for r in throttled)
    assert all(int(r.headers["Retry-After"]) >= 1 for r in throttled)
    assert sim.stats()["mailboxes"]["Alice@corp.example"]["max_in_flight"] <= 4


def test_mailbox_rate_limit(sim):
    sim.configure(mailbox_rate=3)
    graph = Graph(sim)
    statuses = [graph.call("GET", "/users/alice@corp.example/mailFolders").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    throttled = graph.call("GET", "/users/alice@corp.example/mailFolders")
    assert graph_error(throttled) == "TooManyRequests"
    assert int(throttled.headers["Retry-After"]) > 0
    assert graph.call("GET", "/users/bob@corp.example/mailFolders").status_code == 200


def test_global_rate_limit(sim):
    sim.configure(global_rate=2)
    graph = Graph(sim)
    statuses = [graph.call("GET", f"/users/{m}/mailFolders").status_code
                for m in ("alice@corp.example", "bob@corp.example", "alice@corp.example")]
    assert statuses == [200, 200, 429]


# ----------------------------------------------------------------------------------------------
# Faults


def test_fault_throttle_burst_then_recovers(sim):
    sim.set_faults([{"type": "throttle", "path": "/messages", "count": 2, "retry_after": 7}])
    graph = Graph(sim)
    path = graph.search_path("alice@corp.example", ODD_ID)
    first, second, third = (graph.call("GET", path) for _ in range(3))
    assert (first.status_code, second.status_code, third.status_code) == (429, 429, 200)
    assert first.headers["Retry-After"] == "7"
    assert graph_error(first) == "TooManyRequests"


def test_fault_response_after_latency(sim):
    sim.configure(latency_ms=50)
    sim.set_faults([{"type": "throttle", "path": "/messages", "count": 1}])
    graph = Graph(sim)
    path = graph.search_path("alice@corp.example", ODD_ID)
    throttled, normal = (graph.call("GET", path) for _ in range(2))
    assert throttled.status_code == 429
    assert graph_error(throttled) == "TooManyRequests"
    assert normal.status_code == 200
    assert sim.stats()["in_flight"] == 0


@pytest.mark.parametrize("status,retry_after", [(503, 3), (503, None), (504, None), (504, 2)])
def test_fault_status(sim, status, retry_after):
    fault = {"type": "status", "status": status, "mailbox": "alice@corp.example"}
    if retry_after is not None:
        fault["retry_after"] = retry_after
    sim.set_faults([fault])
    response = Graph(sim).call("GET", "/users/alice@corp.example/mailFolders")
    assert response.status_code == status
    assert response.headers.get("Retry-After") == (str(retry_after) if retry_after is not None else None)
    assert "request-id" in response.headers


def test_fault_matches_method_and_mailbox(sim):
    sim.set_faults([{"type": "status", "status": 503, "method": "POST", "mailbox": "bob@corp.example", "count": "always"}])
    graph = Graph(sim)
    assert graph.call("GET", "/users/bob@corp.example/mailFolders").status_code == 200
    hit = graph.search("alice@corp.example", ODD_ID)[0]
    assert graph.call("POST", f"/users/alice@corp.example/messages/{hit['id']}/move", {"destinationId": "junkemail"}).status_code == 201
    bob_hit = graph.search("bob@corp.example", "<b1@x.example>")[0]
    for _ in range(2):
        response = graph.call("POST", f"/users/bob@corp.example/messages/{bob_hit['id']}/move", {"destinationId": "junkemail"})
        assert response.status_code == 503


def test_fault_skip_fails_later_request(sim):
    graph = Graph(sim)
    sim.set_faults([{"type": "status", "status": 500, "skip": 1}])
    statuses = [graph.call("GET", "/users/alice@corp.example/mailFolders").status_code for _ in range(3)]
    assert statuses == [200, 500, 200]


def test_fault_stall_forever(sim):
    sim.set_faults([{"type": "stall", "path": "mailFolders"}])
    with pytest.raises(requests.exceptions.ReadTimeout):
        Graph(sim).call("GET", "/users/alice@corp.example/mailFolders", timeout=1)
    entry = [e for e in sim.log() if "mailFolders" in e["path"]][-1]
    assert entry["status"] == "stalled"


def test_fault_stall_then_answer(sim):
    graph = Graph(sim)
    sim.set_faults([{"type": "stall", "ms": 200}])
    response = graph.call("GET", "/users/alice@corp.example/mailFolders", timeout=10)
    assert response.status_code == 200


def test_fault_reset_before_processing(sim):
    graph = Graph(sim, immutable=True)
    sim.set_faults([{"type": "reset", "method": "POST", "path": "/move$"}])
    hit = graph.search("alice@corp.example", ODD_ID)[0]
    with pytest.raises(requests.exceptions.ConnectionError):
        graph.call("POST", f"/users/alice@corp.example/messages/{hit['id']}/move", {"destinationId": "junkemail"})
    assert folder_of(sim, "alice@corp.example", hit["id"]) == "inbox"


def test_fault_reset_after_processing(sim):
    graph = Graph(sim, immutable=True)
    sim.set_faults([{"type": "reset", "method": "POST", "path": "/move$", "when": "after"}])
    hit = graph.search("alice@corp.example", ODD_ID)[0]
    with pytest.raises(requests.exceptions.ConnectionError):
        graph.call("POST", f"/users/alice@corp.example/messages/{hit['id']}/move", {"destinationId": "junkemail"})
    assert folder_of(sim, "alice@corp.example", hit["id"]) == "junkemail"


@pytest.mark.parametrize("body,status,content_type", [
    ("garbage", 200, "application/json"), ("html", 502, "text/html"), ("empty", 500, "application/json"),
    ("truncated", 200, "application/json")])
def test_fault_malformed_bodies(sim, body, status, content_type):
    graph = Graph(sim)
    sim.set_faults([{"type": "malformed", "body": body}])
    response = graph.call("GET", "/users/alice@corp.example/mailFolders")
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith(content_type)
    with pytest.raises(ValueError):
        json.loads(response.text)


@pytest.mark.parametrize("fault,status,code", [
    ("expired_token", 401, "InvalidAuthenticationToken"),
    ("mailbox_not_enabled", 404, "MailboxNotEnabledForRESTAPI"),
    ("access_denied", 403, "ErrorAccessDenied"),
    ("permanent_delete_unsupported", 400, "BadRequest"),
])
def test_fault_canned_errors(sim, fault, status, code):
    graph = Graph(sim)
    sim.set_faults([{"type": fault}])
    response = graph.call("GET", "/users/alice@corp.example/mailFolders")
    assert response.status_code == status
    assert graph_error(response) == code


def test_fault_on_token_endpoint(sim):
    sim.set_faults([{"type": "status", "status": 503, "path": "/oauth2/", "retry_after": 1}])
    response = sim.session.post(f"{sim.url}/{TENANT}/oauth2/v2.0/token", data={
        "client_id": APP_ID, "client_secret": SECRET, "grant_type": "client_credentials", "scope": GRAPH_SCOPE[0]}, timeout=10)
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"


def test_invalid_fault_script_rejected(sim):
    response = sim.session.post(f"{sim.url}/_sim/faults", json={"faults": [{"type": "nonsense"}]}, timeout=10)
    assert response.status_code == 400


def test_invalid_fixture_rejected(sim):
    response = sim.session.post(f"{sim.url}/_sim/fixture", json={"mailboxes": [{"address": "no-at-sign"}]}, timeout=10)
    assert response.status_code == 400
    assert len(sim.state()["mailboxes"]) == 3


# ----------------------------------------------------------------------------------------------
# Headers and log


def test_request_ids_and_log_hide_token(sim):
    graph = Graph(sim)
    client_request_id = str(uuid.uuid4())
    response = graph.call("GET", "/users/alice@corp.example/mailFolders", headers={"client-request-id": client_request_id})
    assert response.headers["client-request-id"] == client_request_id
    assert response.headers["request-id"]
    assert response.headers["Date"]
    entry = [e for e in sim.log() if e.get("client_request_id") == client_request_id][0]
    assert entry["authorization_scheme"] == "Bearer"
    assert entry["status"] == 200
    assert entry["http_version"] == "1.1"
    token = graph.headers["Authorization"].split(" ", 1)[1]
    raw_log = sim.session.get(f"{sim.url}/_sim/log", timeout=10).text
    assert token not in raw_log
    assert SECRET not in raw_log


def test_http2_requests_are_multiplexed_and_logged(sim):
    token = token_for(sim)
    url = f"{sim.url}/v1.0/users/alice@corp.example/mailFolders"
    # The Authorization header comes from stdin so the token is not in the process list.
    command = ["curl", "-s", "--http2", "--parallel", "--cacert", sim.ca, "-H", "@-",
               "-H", "client-request-id: h2-test", url, url, url,
               "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null"]
    result = subprocess.run(command, input=f"Authorization: Bearer {token}\n", text=True,
                            check=False, capture_output=True)
    assert result.returncode == 0, result.stderr
    entries = [e for e in sim.log() if e.get("client_request_id") == "h2-test"]
    assert len(entries) == 3
    assert {e["http_version"] for e in entries} == {"2.0"}
    assert len({e["connection_id"] for e in entries}) == 1
    assert len({e["stream_id"] for e in entries}) == 3
    assert all(e["status"] == 200 for e in entries)
