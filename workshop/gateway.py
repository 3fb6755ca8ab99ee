"""A local SMS gateway speaking Ronglian Cloud's (容联云通讯) TemplateSMS protocol.

    python -m workshop.gateway                 # http://127.0.0.1:8881, answers after 2 s
    python -m workshop.gateway --latency 0.2 --fail-rate 0.1

It checks the signature like Ronglian does, answers slowly (sending an SMS is slow: that is the
lesson), fails on purpose when told, and keeps an inbox that tests read and the demo page shows.
Only the demo page's origin may read the inbox from a browser (SMS_GATEWAY_ALLOW_ORIGIN, by default
the page on WEB_PORT); no web page may change the gateway's settings.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import errno
import hashlib
import json
import os
import random
import re
import signal
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import requests

from workshop.processes import wait_until

DEFAULT_ACCOUNT_SID = "workshop-account-sid"
DEFAULT_AUTH_TOKEN = "workshop-auth-token"
DEFAULT_APP_ID = "workshop-app-id"
DEFAULT_PORT = 8881
SEND_PATH = "/2013-12-26/Accounts/{}/SMS/TemplateSMS"
SUCCESS = "000000"
MAX_HOLD = 60.0
STALE_AFTER = 300


def leaks(text: str, codes: set[str], mobiles: set[str]) -> list[str]:
    """What of an SMS and of the provider's credentials ``text`` shows: the codes (as a word of their own:
    not inside a longer run of digits or hex, nor the fraction of a timestamp), the full numbers, and the
    signature or the default auth token."""
    found = [code for code in codes if re.search(rf"(?<![\w.]){code}(?!\w|\.\d)", text)]
    found += [mobile for mobile in mobiles if re.search(rf"(?<!\d){mobile}(?!\d)", text)]
    found += [secret for secret in ("sig=", DEFAULT_AUTH_TOKEN) if secret in text]
    return found


# Ronglian-style status codes. Ronglian reports errors in the body with HTTP 200.
ERRORS = {
    "111100": "请求包头Authorization参数为空",
    "111101": "请求包头Authorization参数Base64解码失败",
    "111102": "请求包头Authorization参数解码后格式有误",
    "111106": "请求包头Authorization参数解码后时间戳过期",
    "111107": "请求地址Sig参数为空",
    "111109": "请求地址Sig校验失败",
    "111113": "主账户不存在或与Authorization不一致",
    "111200": "请求包体格式有误",
    "112300": "接收短信的手机号码为空",
    "112310": "应用ID不存在",
    "112314": "模板ID为空",
    "112315": "模板参数格式有误",
    "160042": "号码格式有误",
    "160038": "短信验证码发送过频繁",
    "160039": "超出同模板同号天发送次数上限",
    "160040": "验证码超出同模板同号码天发送上限",
    "172001": "网络错误",
    "111120": "系统繁忙,请稍后再试",
}
TRANSIENT_CODES = frozenset({"172001", "111120"})
PERMANENT_CODES = frozenset(set(ERRORS) - TRANSIENT_CODES)
HTTP_FAILURES = {"http500": 500, "http503": 503}
# "disconnect": the connection drops before the SMS is handled (nothing is sent);
# "answer_lost": the SMS is sent, then the connection drops before the answer (the sender cannot know).
CONNECTION_FAILURES = ("disconnect", "answer_lost")
DEFAULT_FAIL_MODE = "111120"

# Ronglian's clock is Beijing time (UTC+8, no daylight saving): timestamps are checked against it,
# whatever the machine's own time zone.
BEIJING = timezone(timedelta(hours=8))


def beijing_now() -> datetime:
    return datetime.now(BEIJING).replace(tzinfo=None)


TEST_TEMPLATE = "【云通讯】您使用的是云通讯短信模板，您的验证码是{0}，请于{1}分钟内正确输入。"


def render(template_id: str, datas: list) -> str:
    if str(template_id) == "1":
        values = [str(d) for d in datas] + ["", ""]
        return TEST_TEMPLATE.format(values[0], values[1])
    return f"模板{template_id}: " + ", ".join(str(d) for d in datas)


def signature(account_sid: str, auth_token: str, timestamp: str) -> str:
    return hashlib.md5(f"{account_sid}{auth_token}{timestamp}".encode()).hexdigest().upper()


class Rejected(Exception):
    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


class GatewayState:
    """Configuration, counters, the inbox and the hold, shared by all request threads."""

    CONFIG_TYPES = {
        "latency": (int, float),
        "fail_rate": (int, float),
        "fail_next": int,
        "fail_mode": str,
        "hold": bool,
    }

    def __init__(self, account_sid, auth_token, app_id, latency, fail_rate, fail_next, fail_mode):
        self.account_sid, self.auth_token, self.app_id = account_sid, auth_token, app_id
        self.latency, self.fail_rate, self.fail_next = float(latency), float(fail_rate), int(fail_next)
        self.fail_mode = fail_mode or DEFAULT_FAIL_MODE
        self.hold = False
        self.lock = threading.Lock()
        self.released = threading.Condition(self.lock)
        self.generation = 0
        self.messages: list[dict] = []
        # in_flight: received and not yet answered (held, or waiting out the latency).
        self.counters = {"held": 0, "in_flight": 0, "received": 0, "delivered": 0, "failed": 0, "rejected": 0}

    def snapshot(self) -> dict:
        with self.lock:
            return {
                "latency": self.latency,
                "fail_rate": self.fail_rate,
                "fail_next": self.fail_next,
                "fail_mode": self.fail_mode,
                "hold": self.hold,
                **self.counters,
            }

    def configure(self, changes: dict) -> None:
        for key, value in changes.items():
            expected = self.CONFIG_TYPES.get(key)
            if expected is None:
                raise ValueError(f"unknown setting {key!r}; known: {', '.join(self.CONFIG_TYPES)}")
            if isinstance(value, bool) and expected is not bool or not isinstance(value, expected):
                raise ValueError(f"{key} has the wrong type")
            if key == "fail_mode" and value not in (*ERRORS, *HTTP_FAILURES, *CONNECTION_FAILURES):
                raise ValueError(
                    f"fail_mode must be a Ronglian code or one of {', '.join((*HTTP_FAILURES, *CONNECTION_FAILURES))}"
                )
        with self.lock:
            for key, value in changes.items():
                setattr(self, key, float(value) if key in ("latency", "fail_rate") else value)
            if changes.get("hold") is False:
                self._release_locked()

    def release(self) -> None:
        with self.lock:
            self.hold = False
            self._release_locked()

    def _release_locked(self) -> None:
        self.generation += 1
        self.released.notify_all()

    def reset(self) -> None:
        with self.lock:
            self.messages.clear()
            for key in self.counters:
                if key not in ("held", "in_flight"):
                    self.counters[key] = 0

    def count(self, key: str, delta: int = 1) -> None:
        with self.lock:
            self.counters[key] += delta

    def wait_if_held(self) -> None:
        with self.lock:
            if not self.hold:
                return
            self.counters["held"] += 1
            generation, deadline = self.generation, time.monotonic() + MAX_HOLD
            while self.hold and self.generation == generation and time.monotonic() < deadline:
                self.released.wait(timeout=max(0.0, deadline - time.monotonic()))
            self.counters["held"] -= 1

    def next_failure(self) -> str | None:
        with self.lock:
            if self.fail_next > 0:
                self.fail_next -= 1
                return self.fail_mode
            if self.fail_rate > 0 and random.random() < self.fail_rate:
                return self.fail_mode
        return None

    def deliver(self, body: dict, received_at: float) -> dict:
        sid = uuid.uuid4().hex
        created = beijing_now().strftime("%Y%m%d%H%M%S")
        delivered_at = time.time()
        with self.lock:
            for number in str(body["to"]).split(","):
                self.messages.append(
                    {
                        "to": number.strip(),
                        "appId": body["appId"],
                        "templateId": str(body["templateId"]),
                        "datas": body["datas"],
                        "text": render(body["templateId"], body["datas"]),
                        "smsMessageSid": sid,
                        "dateCreated": created,
                        "received_at": received_at,
                        "delivered_at": delivered_at,
                    }
                )
            self.counters["delivered"] += 1
        return {"statusCode": SUCCESS, "templateSMS": {"dateCreated": created, "smsMessageSid": sid}}

    def validate(self, path_sid: str, query: dict, headers, raw: bytes) -> dict:
        auth = headers.get("Authorization")
        if not auth:
            raise Rejected("111100")
        try:
            decoded = base64.b64decode(auth.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise Rejected("111101") from None
        auth_sid, sep, timestamp = decoded.partition(":")
        if not sep or not auth_sid or len(timestamp) != 14 or not timestamp.isdigit():
            raise Rejected("111102")
        try:
            sent = datetime.strptime(timestamp, "%Y%m%d%H%M%S")
        except ValueError:
            raise Rejected("111102") from None
        if abs((beijing_now() - sent).total_seconds()) > STALE_AFTER:
            raise Rejected("111106")
        sig = (query.get("sig") or [""])[0]
        if not sig:
            raise Rejected("111107")
        if path_sid != self.account_sid or auth_sid != self.account_sid:
            raise Rejected("111113")
        if sig != signature(self.account_sid, self.auth_token, timestamp):  # upper-case hex, as Ronglian
            raise Rejected("111109")
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise Rejected("111200") from None
        if not isinstance(body, dict):
            raise Rejected("111200")
        if body.get("appId") != self.app_id:
            raise Rejected("112310")
        to = body.get("to")
        if not to or not isinstance(to, str):
            raise Rejected("112300")
        if not body.get("templateId"):
            raise Rejected("112314")
        if not isinstance(body.get("datas", []), list):
            raise Rejected("112315")
        body.setdefault("datas", [])
        for number in to.split(","):
            number = number.strip()
            if not (len(number) == 11 and number.isascii() and number.isdigit() and number.startswith("1")):
                raise Rejected("160042")
        return body


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "RonglianLocalGateway/1.0"
    # Headers and body leave in two writes: without TCP_NODELAY a reply on a kept-alive connection waits
    # ~40 ms for the client's delayed ACK, and a worker's SMS/s fell to about 80 % of what it should be.
    disable_nagle_algorithm = True
    state: GatewayState  # set on the subclass made per server
    allowed_origins: tuple[str, ...] = ()  # the pages that may read the inbox from a browser

    def log_message(self, format, *args):
        pass  # quiet: tests and the demo read the inbox

    def _send(self, status: int, payload: dict, cors: bool = False) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        origin = self.headers.get("Origin")
        if cors and origin in self.allowed_origins:
            self.send_header("Access-Control-Allow-Origin", origin)
            self.send_header("Vary", "Origin")
        self.end_headers()
        self.wfile.write(data)

    def _from_a_web_page(self) -> bool:
        """A browser names the page's origin on every cross-origin request (and on every POST); curl,
        the tests and the workers send none. Refused so that no page can change the gateway, not even
        with a request it cannot read the answer of."""
        if self.headers.get("Origin") is None:
            return False
        self._send(403, {"error": "the gateway's settings and inbox cannot be changed from a web page"})
        return True

    def _body(self) -> bytes:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0  # a malformed length reads as no body: Ronglian's "bad body" answer follows
        return self.rfile.read(length) if length > 0 else b""

    def do_OPTIONS(self):
        # No preflight is ever granted: the page only reads the inbox, with a GET that needs none.
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path == "/_inbox":
            origin = self.headers.get("Origin")
            if origin is not None and origin not in self.allowed_origins:
                return self._send(
                    403, {"error": f"only {', '.join(self.allowed_origins)} may read the inbox"}
                )
            to = (parse_qs(url.query).get("to") or [None])[0]
            with self.state.lock:
                messages = [m for m in self.state.messages if to is None or m["to"] == to]
            return self._send(200, {"messages": messages}, cors=True)
        if url.path == "/_control":
            return self._send(200, self.state.snapshot(), cors=True)
        self._send(404, {"error": f"no such endpoint: GET {url.path}"}, cors=True)

    def do_DELETE(self):
        self._body()
        if self._from_a_web_page():
            return
        if urlsplit(self.path).path == "/_inbox":
            self.state.reset()
            return self._send(200, {"messages": []}, cors=True)
        self._send(404, {"error": "no such endpoint"}, cors=True)

    def do_POST(self):
        url = urlsplit(self.path)
        raw = self._body()
        if url.path.startswith(("/_inbox", "/_control")) and self._from_a_web_page():
            return
        if url.path == "/_inbox/reset":
            self.state.reset()
            return self._send(200, {"messages": []}, cors=True)
        if url.path == "/_control/release":
            self.state.release()
            return self._send(200, self.state.snapshot(), cors=True)
        if url.path == "/_control":
            try:
                changes = json.loads(raw or b"{}")
                if not isinstance(changes, dict):
                    raise ValueError("send a JSON object")
                self.state.configure(changes)
            except ValueError as exc:
                return self._send(400, {"error": str(exc)}, cors=True)
            return self._send(200, self.state.snapshot(), cors=True)
        prefix, suffix = "/2013-12-26/Accounts/", "/SMS/TemplateSMS"
        if url.path.startswith(prefix) and url.path.endswith(suffix):
            return self._template_sms(url.path[len(prefix) : -len(suffix)], parse_qs(url.query), raw)
        self._send(404, {"error": f"no such endpoint: POST {url.path}"})

    def _template_sms(self, path_sid: str, query: dict, raw: bytes) -> None:
        received_at = time.time()
        try:
            body = self.state.validate(path_sid, query, self.headers, raw)
        except Rejected as exc:
            self.state.count("rejected")
            return self._send(200, {"statusCode": exc.code, "statusMsg": ERRORS[exc.code]})
        self.state.count("received")
        self.state.count("in_flight")
        try:
            self._handle(body, received_at)
        finally:
            self.state.count("in_flight", -1)

    def _handle(self, body: dict, received_at: float) -> None:
        self.state.wait_if_held()
        if self.state.latency > 0:
            time.sleep(self.state.latency)
        failure = self.state.next_failure()
        if failure is None:
            return self._send(200, self.state.deliver(body, received_at))
        if failure == "answer_lost":
            self.state.deliver(body, received_at)  # sent: only the answer is lost
        else:
            self.state.count("failed")
        if failure in CONNECTION_FAILURES:
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if failure in HTTP_FAILURES:
            return self._send(HTTP_FAILURES[failure], {"error": "simulated server error"})
        self._send(200, {"statusCode": failure, "statusMsg": ERRORS[failure]})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # A client that hung up (a killed worker, a timeout) is normal here: no traceback for it.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class GatewayServer:
    """The gateway in a background thread: ``with GatewayServer(latency=0.05) as gw: gw.url``."""

    def __init__(
        self,
        host="127.0.0.1",
        port=0,
        latency=2.0,
        account_sid=DEFAULT_ACCOUNT_SID,
        auth_token=DEFAULT_AUTH_TOKEN,
        app_id=DEFAULT_APP_ID,
        fail_rate=0.0,
        fail_next=0,
        fail_mode=None,
        allow_origins=(),
    ):
        self.state = GatewayState(account_sid, auth_token, app_id, latency, fail_rate, fail_next, fail_mode)
        handler = type(
            "BoundHandler", (Handler,), {"state": self.state, "allowed_origins": tuple(allow_origins)}
        )
        self.httpd = _Server((host, port), handler)
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> GatewayServer:
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def stop(self) -> None:
        self.state.release()
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> GatewayServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class GatewayClient:
    """What tests and the harness use to read the inbox and steer the gateway."""

    def __init__(self, base_url: str, timeout: float = 5.0, wait=wait_until):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.wait = wait  # how its waits poll (the tests' harness ends them early on a student's copy)

    def inbox(self, to: str | None = None) -> list[dict]:
        params = {"to": to} if to else None
        return self.session.get(f"{self.base_url}/_inbox", params=params, timeout=self.timeout).json()[
            "messages"
        ]

    def reset(self) -> None:
        self.session.delete(f"{self.base_url}/_inbox", timeout=self.timeout).raise_for_status()

    def control(self) -> dict:
        return self.session.get(f"{self.base_url}/_control", timeout=self.timeout).json()

    def configure(self, **changes) -> dict:
        response = self.session.post(f"{self.base_url}/_control", json=changes, timeout=self.timeout)
        if response.status_code != 200:
            raise ValueError(response.json().get("error"))
        return response.json()

    def release(self) -> dict:
        return self.session.post(f"{self.base_url}/_control/release", timeout=self.timeout).json()

    def wait_for_messages(self, to: str, count: int = 1, timeout: float = 10.0) -> list[dict]:
        self.wait(
            lambda: len(self.inbox(to=to)) >= count,
            lambda: (
                f"The gateway's inbox for {to} holds {len(self.inbox(to=to))} message(s), expected {count}. "
                f"Inbox: {self.inbox()}; gateway: {self.control()}"
            ),
            timeout,
        )
        return self.inbox(to=to)

    def wait_until_held(self, count: int = 1, timeout: float = 10.0) -> None:
        self.wait(
            lambda: self.control()["held"] >= count,
            lambda: f"The gateway did not hold {count} request(s): {self.control()}",
            timeout,
        )

    def wait_ready(self, timeout: float = 10.0) -> None:
        def answers() -> bool:
            try:
                return self.session.get(f"{self.base_url}/_control", timeout=1).ok
            except requests.RequestException:
                return False

        wait_until(answers, f"The SMS gateway at {self.base_url} did not answer", timeout)


def send_template_sms(
    base_url,
    to,
    datas,
    template_id="1",
    account_sid=DEFAULT_ACCOUNT_SID,
    auth_token=DEFAULT_AUTH_TOKEN,
    app_id=DEFAULT_APP_ID,
    timestamp=None,
) -> dict:
    """A reference signer, built like the official SDK builds its request."""
    timestamp = timestamp or beijing_now().strftime("%Y%m%d%H%M%S")
    url = f"{base_url.rstrip('/')}{SEND_PATH.format(account_sid)}?sig={signature(account_sid, auth_token, timestamp)}"
    headers = {"Authorization": base64.b64encode(f"{account_sid}:{timestamp}".encode()).decode()}
    body = {"to": to, "appId": app_id, "templateId": template_id, "datas": list(datas)}
    return requests.post(url, json=body, headers=headers, timeout=30).json()


def command(port: int, latency: float) -> list[str]:
    """How the tools start this gateway as a process of its own (the Procfiles say `python -m workshop.gateway`)."""
    return [sys.executable, "-m", "workshop.gateway", "--port", str(port), "--latency", str(latency)]


def default_origins() -> list[str]:
    """The demo page's own origins: what SMS_GATEWAY_ALLOW_ORIGIN says, else the page on WEB_PORT."""
    if os.environ.get("SMS_GATEWAY_ALLOW_ORIGIN"):
        return os.environ["SMS_GATEWAY_ALLOW_ORIGIN"].split(",")
    port = os.environ.get("WEB_PORT", "8000")
    return [f"http://127.0.0.1:{port}", f"http://localhost:{port}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="A local SMS gateway speaking Ronglian's TemplateSMS protocol."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("SMS_GATEWAY_PORT", DEFAULT_PORT)))
    parser.add_argument("--latency", type=float, default=float(os.environ.get("SMS_GATEWAY_LATENCY", 2.0)))
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--fail-next", type=int, default=0)
    parser.add_argument("--fail-mode", default=None)
    parser.add_argument(
        "--allow-origin",
        action="append",
        help="a page that may read the inbox from a browser (repeatable); "
        "default: SMS_GATEWAY_ALLOW_ORIGIN, else the demo page on WEB_PORT",
    )
    args = parser.parse_args(argv)
    try:
        server = GatewayServer(
            args.host,
            args.port,
            args.latency,
            os.environ.get("RONGLIAN_ACC_ID", DEFAULT_ACCOUNT_SID),
            os.environ.get("RONGLIAN_ACC_TOKEN", DEFAULT_AUTH_TOKEN),
            os.environ.get("RONGLIAN_APP_ID", DEFAULT_APP_ID),
            args.fail_rate,
            args.fail_next,
            args.fail_mode,
            args.allow_origin or default_origins(),
        )
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            print(
                f"Port {args.port} is already in use: choose another with --port or SMS_GATEWAY_PORT.",
                file=sys.stderr,
            )
            return 2
        raise
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
    print(
        f"SMS gateway (Ronglian protocol) on {server.url}, latency {args.latency} s, inbox at {server.url}/_inbox",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.state.release()
        server.httpd.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
