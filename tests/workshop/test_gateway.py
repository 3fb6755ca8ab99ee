"""The local SMS gateway speaks Ronglian's TemplateSMS protocol: the official SDK is its client."""

import base64
import json
import subprocess
import sys
import threading
import time

import pytest
import requests
from ronglian_sms_sdk import SmsSDK

from tests.harness import MOBILE
from workshop.gateway import (
    DEFAULT_ACCOUNT_SID,
    DEFAULT_APP_ID,
    DEFAULT_AUTH_TOKEN,
    PERMANENT_CODES,
    SEND_PATH,
    TRANSIENT_CODES,
    GatewayClient,
    GatewayServer,
    beijing_now,
    send_template_sms,
    signature,
)
from workshop.processes import free_port


@pytest.fixture
def gateway():
    with GatewayServer(latency=0.05) as server:
        yield server


@pytest.fixture
def client(gateway):
    return GatewayClient(gateway.url)


def sdk_for(url, token=DEFAULT_AUTH_TOKEN, app_id=DEFAULT_APP_ID, sid=DEFAULT_ACCOUNT_SID):
    sdk = SmsSDK(sid, token, app_id)
    sdk.url = url
    return sdk


@pytest.fixture
def beijing_local_time(monkeypatch):
    """The SDK signs with the machine's local time; Ronglian checks Beijing time. Django sets TZ from
    TIME_ZONE = "Asia/Shanghai", which is what makes the SDK right inside the steps: do the same here."""
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_the_official_sdk_sends_a_message(gateway, client, capsys, beijing_local_time):
    result = json.loads(sdk_for(gateway.url).sendMessage("1", MOBILE, ("1234", 5)))

    assert result["statusCode"] == "000000"
    assert len(result["templateSMS"]["smsMessageSid"]) == 32
    [message] = client.inbox(to=MOBILE)
    assert message["datas"] == ["1234", 5]
    assert message["text"] == "【云通讯】您使用的是云通讯短信模板，您的验证码是1234，请于5分钟内正确输入。"
    assert message["received_at"] <= message["delivered_at"]
    # Why step 4 drops the SDK: it prints the signature's plaintext, auth token included.
    assert DEFAULT_AUTH_TOKEN in capsys.readouterr().out


def test_several_numbers_get_one_message_each(gateway, client):
    assert send_template_sms(gateway.url, "13800138000,13900139000", ["1", "5"])["statusCode"] == "000000"

    assert [m["to"] for m in client.inbox()] == ["13800138000", "13900139000"]


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"auth_token": "wrong-token"}, "111109"),
        ({"account_sid": "someone-else"}, "111113"),
        ({"app_id": "another-app"}, "112310"),
        ({"timestamp": "20200101000000"}, "111106"),
    ],
    ids=["wrong token", "unknown account", "unknown app", "stale timestamp"],
)
def test_bad_credentials_are_refused_with_ronglian_codes(gateway, client, kwargs, code):
    result = send_template_sms(gateway.url, MOBILE, ["1234", "5"], **kwargs)

    assert result["statusCode"] == code
    assert result["statusMsg"]
    assert client.inbox() == []
    assert client.control()["rejected"] == 1


def raw_post(url, headers=None, body=b"{}", sig="auto"):
    timestamp = beijing_now().strftime("%Y%m%d%H%M%S")
    if sig == "auto":
        sig = signature(DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, timestamp)
    auth = base64.b64encode(f"{DEFAULT_ACCOUNT_SID}:{timestamp}".encode()).decode()
    headers = {"Authorization": auth, **(headers or {})}
    return requests.post(
        f"{url}{SEND_PATH.format(DEFAULT_ACCOUNT_SID)}?sig={sig}", data=body, headers=headers, timeout=5
    )


def good_body(**changes):
    return json.dumps(
        {"to": MOBILE, "appId": DEFAULT_APP_ID, "templateId": "1", "datas": ["1", "5"], **changes}
    )


@pytest.mark.parametrize(
    ("headers", "body", "sig", "code"),
    [
        ({"Authorization": ""}, good_body(), "auto", "111100"),
        ({"Authorization": "%%%not-base64"}, good_body(), "auto", "111101"),
        ({"Authorization": base64.b64encode(b"no-colon").decode()}, good_body(), "auto", "111102"),
        (None, good_body(), "", "111107"),
        (None, "{not json", "auto", "111200"),
        (None, "[1, 2]", "auto", "111200"),
        (None, good_body(to=""), "auto", "112300"),
        (None, good_body(templateId=""), "auto", "112314"),
        (None, good_body(datas="1234"), "auto", "112315"),
        (None, good_body(to="12345"), "auto", "160042"),
        (None, good_body(to="１３８００１３８０００"), "auto", "160042"),
    ],
    ids=[
        "no authorization", "authorization not base64", "authorization without colon", "no sig",
        "body not json", "body not an object", "no number", "no template", "datas not a list",
        "short number", "full-width number",
    ],
)  # fmt: skip
def test_malformed_requests_are_refused_with_their_own_code(gateway, client, headers, body, sig, code):
    response = raw_post(gateway.url, headers, body.encode() if isinstance(body, str) else body, sig)

    assert response.status_code == 200, "Ronglian reports errors in the body"
    assert response.json()["statusCode"] == code
    assert client.inbox() == []


def test_the_next_failures_use_the_configured_code(gateway, client):
    transient = sorted(TRANSIENT_CODES)[0]
    client.configure(fail_next=2, fail_mode=transient)

    results = [send_template_sms(gateway.url, MOBILE, ["1", "5"])["statusCode"] for _ in range(3)]

    assert results == [transient, transient, "000000"]
    counters = client.control()
    assert (counters["received"], counters["failed"], counters["delivered"]) == (3, 2, 1)
    assert len(client.inbox(to=MOBILE)) == 1


def test_transient_and_permanent_codes_are_disjoint_and_named():
    assert TRANSIENT_CODES and PERMANENT_CODES
    assert not TRANSIENT_CODES & PERMANENT_CODES
    assert "160042" in PERMANENT_CODES and "111109" in PERMANENT_CODES
    assert {"160038", "160039", "160040"} <= PERMANENT_CODES, "Ronglian's own caps: retrying makes it worse"


def test_http_failures_and_disconnects(gateway, client):
    """http500/http503 answer with that status; "disconnect" drops the connection and sends nothing;
    "answer_lost" sends the SMS, then drops the connection before the answer."""
    client.configure(fail_next=1, fail_mode="http500")
    assert raw_post(gateway.url, body=good_body().encode()).status_code == 500

    client.configure(fail_next=1, fail_mode="disconnect")
    with pytest.raises(requests.ConnectionError):
        raw_post(gateway.url, body=good_body().encode())
    assert client.inbox() == []

    client.configure(fail_next=1, fail_mode="answer_lost")
    with pytest.raises(requests.ConnectionError):
        raw_post(gateway.url, body=good_body().encode())
    assert len(client.inbox(to=MOBILE)) == 1

    assert raw_post(gateway.url, body=good_body().encode()).json()["statusCode"] == "000000"
    assert client.control()["in_flight"] == 0


def test_a_failure_rate_of_one_fails_everything(gateway, client):
    client.configure(fail_rate=1.0)

    assert send_template_sms(gateway.url, MOBILE, ["1", "5"])["statusCode"] != "000000"
    assert client.inbox() == []


def test_latency_is_a_lower_bound(gateway, client):
    client.configure(latency=0.3)
    started = time.monotonic()

    send_template_sms(gateway.url, MOBILE, ["1", "5"])

    assert time.monotonic() - started >= 0.3


def test_slow_messages_do_not_block_other_requests(gateway, client):
    client.configure(hold=True)  # every SMS waits inside the gateway until released
    threads = [
        threading.Thread(target=send_template_sms, args=(gateway.url, MOBILE, ["1", "5"])) for _ in range(10)
    ]
    for thread in threads:
        thread.start()

    # Ten requests held at once: a gateway serving one request at a time could hold only one.
    client.wait_until_held(10, timeout=30)
    inbox_while_held = client.inbox()  # and it still answers other requests meanwhile
    client.release()
    for thread in threads:
        thread.join(timeout=30)

    assert inbox_while_held == []
    assert len(client.inbox(to=MOBILE)) == 10


def test_hold_keeps_requests_until_release(gateway, client):
    client.configure(hold=True)
    done = []
    thread = threading.Thread(target=lambda: done.append(send_template_sms(gateway.url, MOBILE, ["1", "5"])))
    thread.start()

    client.wait_until_held(1)
    assert client.inbox() == [] and not done
    assert client.control()["in_flight"] == 1
    client.release()
    thread.join(timeout=10)

    assert done[0]["statusCode"] == "000000"
    assert client.control()["held"] == 0 and client.control()["hold"] is False
    assert len(client.inbox(to=MOBILE)) == 1


def test_each_message_records_when_its_call_arrived_and_when_it_was_delivered(gateway, client):
    """The demo page's timeline reads these (Unix seconds): ``received_at``, when the provider call arrived,
    before any hold or latency; ``delivered_at``, when the SMS reached the inbox, just before the answer."""
    client.configure(hold=True)
    before = time.time()
    thread = threading.Thread(target=send_template_sms, args=(gateway.url, MOBILE, ["1", "5"]))
    thread.start()
    client.wait_until_held(1)
    released = time.time()
    client.release()
    thread.join(timeout=10)
    answered = time.time()

    [message] = client.inbox(to=MOBILE)
    assert before <= message["received_at"] < released <= message["delivered_at"] <= answered


def test_control_rejects_unknown_settings_and_wrong_types(gateway):
    assert requests.post(f"{gateway.url}/_control", json={"speed": 1}, timeout=5).status_code == 400
    assert requests.post(f"{gateway.url}/_control", json={"latency": "fast"}, timeout=5).status_code == 400
    assert (
        requests.post(f"{gateway.url}/_control", json={"fail_mode": "999999"}, timeout=5).status_code == 400
    )


def test_only_the_demo_page_reads_the_inbox_and_no_page_changes_anything():
    """The demo page's origin may read the inbox (CORS); another site's page may not, and no page may
    reset the inbox or change the settings, even blindly (a browser sends Origin with every POST)."""
    page, evil = "http://127.0.0.1:8000", "http://evil.example"
    with GatewayServer(latency=0, allow_origins=[page]) as gateway:
        client = GatewayClient(gateway.url)
        send_template_sms(gateway.url, MOBILE, ["1", "5"])

        read = requests.get(
            f"{gateway.url}/_inbox", params={"to": MOBILE}, headers={"Origin": page}, timeout=5
        )
        stolen = requests.get(f"{gateway.url}/_inbox", headers={"Origin": evil}, timeout=5)
        changes = [
            requests.post(
                f"{gateway.url}/_control", json={"fail_rate": 1}, headers={"Origin": page}, timeout=5
            ),
            requests.post(f"{gateway.url}/_inbox/reset", headers={"Origin": evil}, timeout=5),
            requests.delete(f"{gateway.url}/_inbox", headers={"Origin": evil}, timeout=5),
        ]

        assert read.headers["Access-Control-Allow-Origin"] == page and len(read.json()["messages"]) == 1
        assert stolen.status_code == 403 and "Access-Control-Allow-Origin" not in stolen.headers
        assert [c.status_code for c in changes] == [403, 403, 403]
        assert client.control()["fail_rate"] == 0 and len(client.inbox()) == 1
        client.reset()  # no Origin: the tests and curl
        assert client.inbox() == [] and client.control()["delivered"] == 0


def test_unknown_paths_are_json_404(gateway):
    response = requests.get(f"{gateway.url}/nothing", timeout=5)

    assert response.status_code == 404
    assert "error" in response.json()


def test_the_command_line_gateway_starts_stops_and_names_a_busy_port():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "workshop.gateway", "--port", str(port), "--latency", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        GatewayClient(f"http://127.0.0.1:{port}").wait_ready()
        assert send_template_sms(f"http://127.0.0.1:{port}", MOBILE, ["1", "5"])["statusCode"] == "000000"

        second = subprocess.run(
            [sys.executable, "-m", "workshop.gateway", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert second.returncode == 2
        assert f"Port {port} is already in use" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
    assert f"127.0.0.1:{port}" in process.stdout.read()
