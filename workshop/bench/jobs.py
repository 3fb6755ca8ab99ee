"""The jobs of the peers scenario, as plain functions that Celery, RQ, Dramatiq and Huey each wrap.

``noop()`` does nothing: what is left is the queue's own cost. ``send_sms(mobile)`` is one Ronglian
TemplateSMS POST to the local gateway (``RONGLIAN_BASE_URL``), with the account the gateway accepts by
default; it raises unless the gateway answers statusCode "000000". ``mark(name)`` notes when a worker
runs it, in ``PEER_MARK_URL``'s Redis: the bench puts one before and one after the no-op tasks it times.
"""

from __future__ import annotations

import base64
import os
import time

import requests
import requests.adapters

from workshop.gateway import (
    DEFAULT_ACCOUNT_SID,
    DEFAULT_APP_ID,
    DEFAULT_AUTH_TOKEN,
    SEND_PATH,
    SUCCESS,
    beijing_now,
    signature,
)

MARK_PREFIX = "peer:mark:"
_session: requests.Session | None = None
_session_pid = 0


def noop() -> None:
    return None


def session() -> requests.Session:
    """One Session a process (a fork gets its own), with room for 100 connections at once."""
    global _session, _session_pid
    if _session is None or _session_pid != os.getpid():
        _session, _session_pid = requests.Session(), os.getpid()
        _session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=100))
    return _session


def send_sms(mobile: str) -> None:
    timestamp = beijing_now().strftime("%Y%m%d%H%M%S")
    sig = signature(DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, timestamp)
    url = os.environ["RONGLIAN_BASE_URL"].rstrip("/") + SEND_PATH.format(DEFAULT_ACCOUNT_SID)
    authorization = base64.b64encode(f"{DEFAULT_ACCOUNT_SID}:{timestamp}".encode()).decode()
    body = {"to": mobile, "appId": DEFAULT_APP_ID, "templateId": "1", "datas": ["123456", "5"]}
    response = session().post(
        url,
        params={"sig": sig},
        json=body,
        headers={"Accept": "application/json", "Authorization": authorization},
        timeout=(3, 10),
    )
    code = response.json().get("statusCode") if response.status_code == 200 else response.status_code
    if code != SUCCESS:
        raise RuntimeError(f"the gateway did not send the SMS to {mobile}: {code}")


def mark(name: str) -> None:
    import redis

    client = redis.Redis.from_url(os.environ["PEER_MARK_URL"])
    try:
        client.set(MARK_PREFIX + name, repr(time.time()))
    finally:
        client.close()
