"""Step 4's limits and refusals through the real servers: gunicorn in production mode (the matrix's),
runserver with DEBUG on, gunicorn behind a real nginx, and the gateway the demo page reads."""

from __future__ import annotations

import shutil
import socket
import sys
from pathlib import Path

import pytest
import redis
import requests

from tests.harness import ROOT, missing
from workshop.processes import Process, free_port
from workshop.steps import current_code

from .stack import GLOBAL_RATE, Answer, request

NGINX_HINT = "sudo apt-get install nginx-light (Debian/Ubuntu) or brew install nginx: the test starts its own"


def verify(stack, mobile, code, source="127.0.7.1", port=None) -> Answer:
    return request(
        port or stack.web_port, "POST", "/users/sms/verify/", {"mobile": mobile, "code": code}, source=source
    )


def code_of(stack, mobile):
    return current_code(stack.services.redis_url, mobile)


def test_the_interval_through_the_server(stack):
    """A second code for one number within SMS_INTERVAL_TIME: 429, its own message and Retry-After."""
    stack.reset()

    first, again = (
        stack.send("13800138000", source="127.0.17.1"),
        stack.send("13800138000", source="127.0.17.2"),
    )

    assert (first.status, again.status) == (200, 429)
    assert "60秒内已经发送过短信" in again.body["error"] and 0 < int(again.headers["Retry-After"]) <= 60


def test_checking_codes_is_throttled_per_client_through_the_server(stack):
    """SMS_VERIFY_THROTTLE_RATE (30 an hour) checks from one address; the thirty-first is 429."""
    stack.reset()

    answers = [verify(stack, f"1{30 + i}00138000", "123456", source="127.0.18.1") for i in range(31)]

    assert [a.status for a in answers] == [400] * 30 + [429]
    assert "请求过于频繁" in answers[-1].body["error"]


def test_the_per_client_throttle_through_the_server(stack):
    """One address, eleven numbers: SMS_THROTTLE_RATE (10 an hour) get a code, the eleventh is 429 with
    its own message."""
    stack.reset()

    answers = [stack.send(f"1{30 + i}00138000", source="127.0.15.1") for i in range(11)]

    assert [a.status for a in answers] == [200] * 10 + [429]
    assert "请求过于频繁" in answers[-1].body["error"] and int(answers[-1].headers["Retry-After"]) > 0


def test_the_daily_cap_per_number_through_the_server(stack):
    """SMS_DAILY_LIMIT (10) codes a day for one number, each after its interval: the eleventh is refused
    until midnight, and leaves no interval held."""
    stack.reset()
    cache = stack.cache_client()
    answers = []
    for i in range(10):
        answers.append(stack.send("13800138000", source=f"127.0.16.{i + 1}"))
        cache.delete("interval_13800138000")  # as if the interval had passed

    capped = stack.send("13800138000", source="127.0.16.11")

    assert [a.status for a in answers] == [200] * 10
    assert capped.status == 429 and "次数已达上限" in capped.body["error"]
    assert not cache.exists("interval_13800138000")
    cache.close()


def test_the_prefix_cap_through_the_server(stack):
    """40 numbers of one prefix from 40 addresses: exactly SMS_PREFIX_RATE (20 an hour) get a code; the
    rest 429 with the prefix's own message and Retry-After."""
    stack.reset()

    answers = stack.run(
        [lambda i=i: stack.send(f"1390013{i:04d}", source=f"127.0.8.{i + 1}") for i in range(40)], 20
    )

    assert sorted(a.status for a in answers) == [200] * 20 + [429] * 20
    refused = [a for a in answers if a.status == 429]
    assert all("该号段获取验证码过于频繁" in a.body["error"] for a in refused)
    assert all(0 < int(a.headers["Retry-After"]) <= 3600 for a in refused)


def test_the_global_cap_through_the_server(stack):
    """200 numbers, each of its own prefix, from 50 addresses: exactly SMS_GLOBAL_RATE get a code."""
    stack.reset()
    allowed = int(GLOBAL_RATE.split("/")[0])

    answers = stack.run(
        [lambda i=i: stack.send(f"13{i:05d}0000", source=f"127.0.9.{i % 50 + 1}") for i in range(200)], 20
    )

    assert sorted(a.status for a in answers) == [200] * allowed + [429] * (200 - allowed)
    assert all("短信发送繁忙" in a.body["error"] for a in answers if a.status == 429)


def test_wrong_codes_are_capped_per_number_through_the_server(stack):
    """Four codes, five wrong guesses each: SMS_DAILY_WRONG_LIMIT (20) reached, so even the right code of
    a fifth one is refused, with its own message, until midnight."""
    stack.reset()
    mobile = "13800138000"
    cache = stack.cache_client()
    for n in range(4):
        assert stack.send(mobile, source=f"127.0.10.{n + 1}").status == 200
        wrong = f"{(int(code_of(stack, mobile)) + 1) % 1_000_000:06d}"
        assert {verify(stack, mobile, wrong, source=f"127.0.11.{n + 1}").status for _ in range(5)} == {400}
        cache.delete(f"interval_{mobile}")  # as if the interval had passed
    cache.close()
    assert stack.send(mobile, source="127.0.10.9").status == 200

    capped = verify(stack, mobile, code_of(stack, mobile), source="127.0.11.9")

    assert capped.status == 429
    assert "输错验证码的次数过多" in capped.body["error"]
    assert int(capped.headers["Retry-After"]) > 0


def test_verify_answers_alike_for_no_code_and_a_wrong_code_through_the_server(stack):
    """Whether a number has a code waiting cannot be told from the answer."""
    stack.reset()
    assert stack.send("13800138000", source="127.0.12.1").status == 200
    wrong = f"{(int(code_of(stack, '13800138000')) + 1) % 1_000_000:06d}"

    with_code = verify(stack, "13800138000", wrong)
    without = verify(stack, "13900139000", wrong)

    assert (with_code.status, with_code.body) == (without.status, without.body) == (400, with_code.body)


def test_messages_follow_accept_language_through_the_server(stack):
    """Chinese by default; English when the browser asks for it (LocaleMiddleware)."""
    chinese = request(stack.web_port, "POST", "/users/sms/", {"mobile": "12345"})
    english = request(
        stack.web_port, "POST", "/users/sms/", {"mobile": "12345"}, headers={"Accept-Language": "en"}
    )
    page = requests.get(f"http://127.0.0.1:{stack.web_port}/", headers={"Accept-Language": "en"}, timeout=10)

    assert "请输入11位中国大陆手机号" in chinese.body["error"]
    assert "Enter an 11-digit mainland China mobile number" in english.body["error"]
    assert '<html lang="en">' in page.text and "Get a code" in page.text


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_the_chapters_get_and_head_send_nothing_through_the_server(stack, method):
    """`curl -I` or an <img src> on the chapter's URL: 405, and nothing is sent or stored."""
    stack.reset()

    answer = request(stack.web_port, method, "/users/sms/13800138000/")

    assert answer.status == 405
    assert stack.cache_client().keys("*") == []
    broker = stack.services.queues()
    assert broker.ready("sms") == 0
    broker.close()


@pytest.fixture(scope="module")
def debug_server(stack):
    """runserver with DEBUG on, as `make demo` runs the page."""
    port = free_port()
    env = {"DJANGO_DEBUG": "1", "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost"}
    command = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
    server = Process(command, cwd=stack.step_path, env={**stack.env, **env}).start(port=port)
    yield server, port
    server.stop()


@pytest.mark.parametrize("server", ["gunicorn, production", "runserver, DEBUG on"])
def test_every_error_under_the_api_is_json_through_the_server(stack, debug_server, server):
    """A Host that is not allowed, a path that matches nothing, a body too large, the wrong media type, a
    cross-site page: JSON with a message, never Django's HTML page (with DEBUG on, it shows the settings)."""
    stack.reset()
    port = stack.web_port if server.startswith("gunicorn") else debug_server[1]
    big = {"mobile": "1" * 3_000_000}

    answers = {
        400: request(
            port, "POST", "/users/sms/", {"mobile": "13800138000"}, headers={"Host": "evil.example"}
        ),
        403: request(
            port, "POST", "/users/sms/", {"mobile": "13800138000"}, headers={"Origin": "http://evil.example"}
        ),
        404: request(port, "GET", "/users/sms//"),
        405: request(port, "GET", "/users/sms/13800138000/"),
        413: request(port, "POST", "/users/sms/", big),
        415: request(port, "POST", "/users/sms/", {"mobile": "1"}, headers={"Content-Type": "text/plain"}),
    }

    for status, answer in answers.items():
        assert answer.status == status, (status, answer.body)
        assert answer.headers["Content-Type"] == "application/json", (status, answer.body)
        assert answer.body["error"], status
    if server.startswith("runserver"):  # Django's own log lines, with DEBUG on, quote the URL: masked
        assert "13800138000" not in debug_server[0].output and "138****8000" in debug_server[0].output


@pytest.fixture(scope="module")
def proxied(stack, tmp_path_factory):
    """A second gunicorn that trusts 127.0.0.1 (TRUSTED_PROXIES), on IPv4 and on ::1, behind a real nginx
    configured with docs/examples/nginx/renran.conf."""
    nginx = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)
    if nginx is None:
        missing("nginx", NGINX_HINT)
    web_port, proxy_port = free_port(), free_port()
    env = {**stack.env, "TRUSTED_PROXIES": "127.0.0.1", "SMS_THROTTLE_RATE": "3/minute"}
    binds = ["-b", f"127.0.0.1:{web_port}", "-b", f"[::1]:{web_port}"]
    command = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", *binds, "renranapi.wsgi"]
    web = Process(command, cwd=stack.step_path, env=env).start(port=web_port)
    folder = tmp_path_factory.mktemp("nginx")
    server = (ROOT / "docs/examples/nginx/renran.conf").read_text()
    server = server.replace("127.0.0.1:8080", f"127.0.0.1:{proxy_port}").replace(
        "127.0.0.1:8000", f"127.0.0.1:{web_port}"
    )
    temp = " ".join(
        f"{name}_temp_path {folder}/{name};" for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (folder / "nginx.conf").write_text(
        f"pid {folder}/nginx.pid; error_log {folder}/error.log; worker_processes 1;\n"
        f"events {{}}\nhttp {{ access_log off; {temp}\n{server}\n}}\n"
    )
    proxy = Process([nginx, "-p", folder, "-c", folder / "nginx.conf", "-g", "daemon off;"]).start(
        port=proxy_port
    )
    yield web_port, proxy_port
    proxy.stop()
    web.stop()


def test_x_forwarded_for_behind_a_real_nginx(stack, proxied):
    """Behind nginx, each client is counted by the address nginx saw, whatever it wrote in X-Forwarded-For
    itself; straight to gunicorn, a forged header is ignored (the sender is not a trusted proxy)."""
    stack.reset()
    web_port, proxy_port = proxied

    def send(port, n, source, forged):
        body = {"mobile": f"1{n:02d}00138000"}
        return request(
            port, "POST", "/users/sms/", body, source=source, headers={"X-Forwarded-For": forged}
        ).status

    # Four clients through nginx, each forging a new address per request: three each, then 429.
    through = [
        [send(proxy_port, 30 + 4 * c + i, f"127.0.13.{c + 1}", f"198.51.100.{i}") for i in range(4)]
        for c in range(2)
    ]
    direct = [send(web_port, 40 + i, "127.0.14.1", f"198.51.100.{i}") for i in range(4)]

    assert through == [[200, 200, 200, 429]] * 2, "each client behind nginx is counted, forged header or not"
    assert direct == [200, 200, 200, 429], "not from a trusted proxy: X-Forwarded-For is ignored"
    # The page, served through nginx, sends with its own origin: nginx passes the Host with its port.
    origin = {"Origin": f"http://127.0.0.1:{proxy_port}"}
    page = request(
        proxy_port, "POST", "/users/sms/", {"mobile": "13900139000"}, source="127.0.13.9", headers=origin
    )
    assert page.status == 200, page.body


def test_an_ipv6_client_is_counted_by_its_64_through_the_server(stack, proxied):
    """A request over IPv6 (::1) is counted under its /64 network, the unit a host is given."""
    stack.reset()
    web_port, _ = proxied
    url = f"http://[::1]:{web_port}/users/sms/"

    statuses = [
        requests.post(url, json={"mobile": f"1{50 + i}00138000"}, timeout=10).status_code for i in range(4)
    ]

    assert statuses == [200, 200, 200, 429]
    counters = redis.Redis.from_url(f"{stack.services.redis_url}/0", decode_responses=True)
    assert counters.keys("throttle_sms_*") == ["throttle_sms_::/64"]
    counters.close()


def test_only_the_demo_page_may_read_the_inbox_and_no_page_may_change_the_gateway(stack):
    """The gateway answers the demo page's origin only, and refuses every change that comes from a page:
    another site cannot read the codes on the simulated phone, nor switch the provider's faults on."""
    inbox, control = f"{stack.services.gateway_url}/_inbox", f"{stack.services.gateway_url}/_control"
    page, evil = "http://127.0.0.1:8000", "http://evil.example"

    allowed = requests.get(inbox, headers={"Origin": page}, timeout=10)
    refused = requests.get(inbox, headers={"Origin": evil}, timeout=10)
    changed = requests.post(control, json={"fail_rate": 1.0}, headers={"Origin": page}, timeout=10)
    preflight = requests.options(
        control, headers={"Origin": evil, "Access-Control-Request-Method": "POST"}, timeout=10
    )

    assert allowed.status_code == 200 and allowed.headers["Access-Control-Allow-Origin"] == page
    assert refused.status_code == 403 and "Access-Control-Allow-Origin" not in refused.headers
    assert changed.status_code == 403 and stack.gateway.control()["fail_rate"] == 0.0
    assert "Access-Control-Allow-Origin" not in preflight.headers
    assert requests.get(control, timeout=10).status_code == 200, (
        "curl and the tests, with no Origin, still may"
    )


def test_a_body_sent_in_chunks_is_read_as_empty_through_the_server(stack):
    """A body with no Content-Length (Transfer-Encoding: chunked), 3 MB of it: Django reads exactly
    Content-Length bytes, none here, so the request is a 400 for a missing number, in JSON, at once."""
    body = b'{"mobile": "' + b"1" * 3_000_000 + b'"}'
    head = (
        f"POST /users/sms/ HTTP/1.1\r\nHost: 127.0.0.1:{stack.web_port}\r\nContent-Type: application/json\r\n"
    )
    with socket.create_connection(("127.0.0.1", stack.web_port), timeout=10) as connection:
        connection.sendall(f"{head}Transfer-Encoding: chunked\r\n\r\n".encode())
        try:
            for i in range(0, len(body), 65536):
                part = body[i : i + 65536]
                connection.sendall(b"%x\r\n%s\r\n" % (len(part), part))
            connection.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server may answer, and close, before it has read everything
        answer = connection.recv(65536).decode(errors="replace")

    assert answer.startswith("HTTP/1.1 400 ")
    assert "Content-Type: application/json" in answer and '"error":"mobile: ' in answer
