"""The requests of the official Ruby, PHP and C# clients, byte for byte, against a served sandbox.

Their packages cannot be installed here (the Python and Node clients run for real in
test_pokitdok_client.py and test_node_client.py), so each request below is written out as the
client's own code builds it: request line, headers in its order, encoding and body. The source each
shape is copied from is named beside it:

* PHP, `pokitdok/pokitdok-php`, `src/PokitDok/Common/Oauth2ApplicationClient.php`: the token request is
  curl given an array (`CURLOPT_POSTFIELDS => array(...)`: multipart/form-data, with HTTP Basic as
  well); API requests join `http_build_query($parameters)` (indexed brackets) to GET and DELETE
  paths, send `Content-Type:  application/json` (two spaces, `sprintf('Content-Type:  %s')`) with
  `json_encode`d bodies, and `User-Agent: php-pokitdok#1.1.0#<os>#<release>`;
  `src/PokitDok/Platform/PlatformClient.php` appends a uuid given as a string to the collection path.
* Ruby, `pokitdok/pokitdok-ruby`, `lib/OAuthApplicationClient.rb` and `lib/pokitdok.rb` (Faraday 0.9,
  oauth2 1.3, per its Gemfile.lock): the token request as its recorded cassette shows it (Basic
  credentials, `grant_type=client_credentials`); GET parameters by Faraday's nested encoder
  (`location[]=..&location[]=..`, keys sorted); PUT bodies `to_json`; DELETE with the body `{}` and
  `Content-Type: application/json`.
* C#, `pokitdok/pokitdok-csharp`, `OauthApplicationClient.cs` and `PlatformClient.cs`: the token form
  `grant_type=client_credentials&client_id=..&client_secret=..` with Basic credentials too; GET
  parameters from a `Dictionary<string, string>` as `key=HttpUtility.UrlEncode(value)` (lower-case
  hex, `+` for a space), so a location is the string `"[32.78811, -79.932364]"`; JSON bodies by
  Json.NET from `Dictionary<string, object>` (a location as `new string[] {...}` in the final
  documentation's own C# example); the slots path without its trailing slash (`/schedule/slots`);
  HttpWebRequest's `Expect: 100-continue` and `Connection: Keep-Alive`.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import socket

import pytest

from pokitdok_sandbox.fixtures import doc_examples as doc

from pokitdok_sandbox.testing import DEMO, running_sandbox

SIX_DIGITS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$")
BASIC = "Basic " + base64.b64encode(f"{DEMO[0]}:{DEMO[1]}".encode()).decode()
PROVIDER = doc.PROVIDER_UUID
PHP_AGENT = "php-pokitdok#1.1.0#Linux#6.1.0"
RUBY_AGENT = "pokitdok-ruby#0.9.0#linux#"
CSHARP_AGENT = "csharp-pokitdok#1.0.0.0#Unix#6.1.0.0"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_sandbox(tmp_path_factory.mktemp("clients") / "sandbox.json") as running:
        yield running


def send(server, head: str, body: bytes = b"") -> tuple[int, dict, bytes]:
    """Write the request's bytes as given (CRLF line ends, `{host}` filled in) and read the answer."""
    request = head.replace("{host}", f"127.0.0.1:{server.port}").replace("\n", "\r\n").encode() + body
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        connection.sendall(request)
        answer = http.client.HTTPResponse(connection)
        answer.begin()  # (skips a 100 Continue)
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()


def enveloped(status: int, body: bytes):
    assert status == 200, body
    document = json.loads(body)
    assert set(document) == {"meta", "data"}, document
    return document["meta"], document["data"]


def assert_six_digits(records: list[dict]) -> None:
    assert records
    for record in records:
        assert SIX_DIGITS.match(record["start_date"]) and SIX_DIGITS.match(record["end_date"]), record


# -- PHP -------------------------------------------------------------------------------------------

def php_token(server) -> str:
    boundary = "------------------------d74496d66958873e"
    parts = "".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                    for name, value in (("grant_type", "client_credentials"), ("client_id", DEMO[0]),
                                        ("client_secret", DEMO[1])))
    body = (parts + f"--{boundary}--\r\n").encode()
    status, headers, answer = send(server, "POST /oauth2/token HTTP/1.1\nHost: {host}\n"
                                           f"Authorization: {BASIC}\nAccept: */*\nContent-Length: {len(body)}\n"
                                           "Expect: 100-continue\n"
                                           f"Content-Type: multipart/form-data; boundary={boundary}\n\n", body)
    assert status == 200, answer
    token = json.loads(answer)
    # What the PHP client's setAccessToken() requires of the answer.
    assert {"access_token", "token_type", "expires_in", "expires"} <= set(token)
    return token["access_token"]


def test_php_client_token_search_book_cancel_and_activity(server):
    token = php_token(server)
    common = f"Host: {{host}}\nAuthorization: Bearer {token}\nUser-Agent: {PHP_AGENT}\nAccept: */*\n"
    # appointments(array(...)): http_build_query of a PHP array indexes a list's keys.
    query = f"pd_provider_uuid={PROVIDER}&location%5B0%5D=32.78811&location%5B1%5D=-79.932364"
    status, _headers, body = send(server, f"GET /api/v4/schedule/appointments/?{query} HTTP/1.1\n{common}\n")
    meta, found = enveloped(status, body)
    assert_six_digits(found)
    slot = found[0]["pd_appointment_uuid"]
    # book_appointment($uuid, array): PUT, json_encode, the client's two-space Content-Type header.
    booking = json.dumps({"patient": {"_uuid": doc.PEG_PATIENT, "email": "john@johndoe.com",
                                      "phone": "800-555-1212", "birth_date": "1970-01-01", "first_name": "John",
                                      "last_name": "Doe", "member_id": "M000001"},
                          "description": "Welcome to M0d3rN Healthcare"}, separators=(",", ":")).encode()
    status, _headers, body = send(server, f"PUT /api/v4/schedule/appointments/{slot} HTTP/1.1\n{common}"
                                          f"Content-Length: {len(booking)}\nContent-Type:  application/json\n\n",
                                  booking)
    _meta, booked = enveloped(status, body)
    assert (booked["booked"], booked["status"], booked["patient"]["uuid"]) == (True, "booked", doc.PEG_PATIENT)
    # cancel_appointment($uuid): DELETE on the collection path with the uuid appended.
    status, _headers, body = send(server, f"DELETE /api/v4/schedule/appointments/{slot} HTTP/1.1\n{common}\n")
    assert enveloped(status, body)[1]["status"] == "open"
    # activities($id): a string parameter is appended to /activities/.
    status, _headers, body = send(server, f"GET /api/v4/activities/{meta['activity_id']} HTTP/1.1\n{common}\n")
    activity = enveloped(status, body)[1]
    assert (activity["id"], activity["name"], activity["state"]["name"]) == \
        (meta["activity_id"], "search_appointments", "completed")


# -- Ruby ------------------------------------------------------------------------------------------

def test_ruby_client_token_search_book_cancel_and_activity(server):
    faraday = "Accept-Encoding: gzip;q=1.0,deflate;q=0.6,identity;q=0.3\nAccept: */*\n"
    form = b"grant_type=client_credentials"
    status, _headers, body = send(server, "POST /oauth2/token HTTP/1.1\nHost: {host}\n"
                                          f"Authorization: {BASIC}\nUser-Agent: Faraday v0.9.0\n"
                                          "Content-Type: application/x-www-form-urlencoded\n"
                                          f"{faraday}Content-Length: {len(form)}\n\n", form)
    assert status == 200, body
    token = json.loads(body)["access_token"]
    common = f"Host: {{host}}\nUser-Agent: {RUBY_AGENT}\nAuthorization: Bearer {token}\n{faraday}"
    # get_appointments(nil, {location: [...], pd_provider_uuid: ...}): Faraday's nested encoder, keys sorted.
    query = f"location%5B%5D=32.78811&location%5B%5D=-79.932364&pd_provider_uuid={PROVIDER}"
    status, _headers, body = send(server, f"GET /api/v4/schedule/appointments/?{query} HTTP/1.1\n{common}\n")
    meta, found = enveloped(status, body)
    assert_six_digits(found)
    slot = found[0]["pd_appointment_uuid"]
    booking = ('{"patient":{"_uuid":"%s","email":"john@johndoe.com","phone":"800-555-1212",'
               '"birth_date":"1970-01-01","first_name":"John","last_name":"Doe","member_id":"M000001"},'
               '"description":"Welcome to M0d3rN Healthcare"}' % doc.PEG_PATIENT).encode()
    status, _headers, body = send(server, f"PUT /api/v4/schedule/appointments/{slot} HTTP/1.1\n{common}"
                                          f"Content-Type: application/json\nContent-Length: {len(booking)}\n\n",
                                  booking)
    assert enveloped(status, body)[1]["status"] == "booked"
    # cancel_appointment(uuid): delete_request sends `{}` as a JSON body; the client reads JSON or a 204.
    status, _headers, body = send(server, f"DELETE /api/v4/schedule/appointments/{slot} HTTP/1.1\n{common}"
                                          "Content-Type: application/json\nContent-Length: 2\n\n", b"{}")
    assert enveloped(status, body)[1]["booked"] is False
    status, _headers, body = send(server, f"GET /api/v4/activities/{meta['activity_id']} HTTP/1.1\n{common}\n")
    assert enveloped(status, body)[1]["parameters"]["location[]"] == ["32.78811", "-79.932364"]


# -- C# --------------------------------------------------------------------------------------------

def test_csharp_client_token_location_string_and_string_array_body(server):
    form = f"grant_type=client_credentials&client_id={DEMO[0]}&client_secret={DEMO[1]}".encode()
    status, _headers, body = send(server, "POST /oauth2/token HTTP/1.1\n"
                                          f"Authorization: {BASIC}\nContent-Type: application/x-www-form-urlencoded\n"
                                          f"User-Agent: {CSHARP_AGENT}\nHost: {{host}}\nContent-Length: {len(form)}\n"
                                          "Expect: 100-continue\nConnection: Keep-Alive\n\n", form)
    assert status == 200, body
    token = json.loads(body)["access_token"]
    common = f"Authorization: Bearer {token}\nUser-Agent: {CSHARP_AGENT}\nHost: {{host}}\n"
    # appointments(new Dictionary<string, string> {{"pd_provider_uuid", ..}, {"location", "[32.78811, -79.932364]"}})
    query = f"pd_provider_uuid={PROVIDER}&location=%5b32.78811%2c+-79.932364%5d"
    status, _headers, body = send(server, f"GET /api/v4/schedule/appointments/?{query} HTTP/1.1\n{common}\n")
    assert_six_digits(enveloped(status, body)[1])
    # scheduleSlots(...) with the location as a string[], as the final documentation's C# example has it.
    slot = ('{"pd_provider_uuid":"%s","location":["32.788110","-79.932364"],"appointment_type":"AT1",'
            '"start_date":"2033-02-03T09:00:00","end_date":"2033-02-03T09:30:00"}' % PROVIDER).encode()
    status, _headers, body = send(server, f"POST /api/v4/schedule/slots HTTP/1.1\n{common}"
                                          f"Content-Type: application/json\nContent-Length: {len(slot)}\n"
                                          "Expect: 100-continue\nConnection: Keep-Alive\n\n", slot)
    meta, created = enveloped(status, body)
    assert (created["start_date"], created["end_date"], created["status"]) == \
        ("2033-02-03T09:00:00.000000", "2033-02-03T09:30:00.000000", "open")
    # cancelAppointment(uuid) on an open slot: DELETE without Content-Type or body; refused in the envelope.
    status, _headers, body = send(server, f"DELETE /api/v4/schedule/appointments/{created['pd_appointment_uuid']} "
                                          f"HTTP/1.1\n{common}\n")
    assert status == 409 and json.loads(body)["data"]["errors"]["field"] == "pd_appointment_uuid"
    status, _headers, body = send(server, f"GET /api/v4/activities/{meta['activity_id']} HTTP/1.1\n{common}\n")
    assert enveloped(status, body)[1]["name"] == "create_slot"
