"""A small client for Ronglian Cloud's (容联云通讯) TemplateSMS API, replacing the official SDK.

Why not the SDK: it prints the auth token and the signature's plaintext to stdout, turns every
failure into the same "network error" string, and opens a new connection per message. This client
keeps one connection pool per process, puts a timeout on every call, logs no secret, and raises a
typed error that tells the task whether trying again can help, and whether the SMS may be out already.
"""

import base64
import hashlib
from datetime import datetime, timedelta, timezone

import requests
import requests.adapters
from django.conf import settings
from urllib3.exceptions import NewConnectionError

SEND_PATH = "/2013-12-26/Accounts/{account_sid}/SMS/TemplateSMS"
SUCCESS = "000000"
BEIJING = timezone(timedelta(hours=8))
# Ronglian status codes that mean "not now" rather than "never": the system is busy, a network error.
TRANSIENT_CODES = frozenset({"111120", "172001"})


# --8<-- [start:errors]
class SMSError(Exception):
    """The SMS was not sent. ``code`` is Ronglian's statusCode or the HTTP status."""

    def __init__(self, message, code=""):
        super().__init__(message)
        self.code = code


class TransientSMSError(SMSError):
    """Not sent, worth retrying: no connection, a 5xx or 429, a busy provider."""


class PermanentSMSError(SMSError):
    """Not sent, and retrying cannot help: bad number, bad template, wrong credentials, a provider's cap."""


class AmbiguousSMSError(SMSError):
    """The request reached the provider but no answer came back: the SMS may have been sent.

    Retrying could send it twice, so the task does not: the user may ask again after the interval.
    """


def never_left(exc):
    """True when the request cannot have reached the provider: the connection was never made."""
    if isinstance(exc, requests.ConnectTimeout | requests.exceptions.SSLError):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(exc, requests.ConnectionError) and isinstance(reason, NewConnectionError)
    # --8<-- [end:errors]


class RonglianClient:
    def __init__(self, account_sid, auth_token, app_id, base_url, timeout=(3, 10), pool_maxsize=100):
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.app_id = app_id
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        # One Session per process: connections are reused from one SMS to the next, up to
        # pool_maxsize at once (a threads or gevent worker sends many SMS concurrently).
        self.session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=pool_maxsize)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    # --8<-- [start:sign]
    def _signed_request(self):
        # Ronglian checks the timestamp against Beijing time (the SDK uses the machine's local time).
        timestamp = datetime.now(BEIJING).strftime("%Y%m%d%H%M%S")
        sig = hashlib.md5(f"{self.account_sid}{self.auth_token}{timestamp}".encode()).hexdigest().upper()
        url = f"{self.base_url}{SEND_PATH.format(account_sid=self.account_sid)}?sig={sig}"
        authorization = base64.b64encode(f"{self.account_sid}:{timestamp}".encode()).decode()
        headers = {"Accept": "application/json", "Authorization": authorization}
        return url, headers

    # --8<-- [end:sign]

    # --8<-- [start:send]
    def send_template_sms(self, mobile, datas, template_id):
        """Send one template SMS; return Ronglian's smsMessageSid or raise an SMSError."""
        url, headers = self._signed_request()
        body = {
            "to": mobile,
            "appId": self.app_id,
            "templateId": str(template_id),
            "datas": [str(d) for d in datas],
        }
        try:
            response = self.session.post(url, json=body, headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            if never_left(exc):
                raise TransientSMSError(f"cannot reach Ronglian ({type(exc).__name__})") from None
            # A read timeout or a connection dropped mid-way: Ronglian may have accepted the SMS.
            raise AmbiguousSMSError(f"no answer from Ronglian ({type(exc).__name__})") from None

        # The HTTP status first: a wrong base URL's HTML 404 is not worth retrying, a 5xx or 429 is.
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientSMSError(
                f"Ronglian answered HTTP {response.status_code}", str(response.status_code)
            )
        if response.status_code != 200:
            raise PermanentSMSError(
                f"Ronglian answered HTTP {response.status_code}", str(response.status_code)
            )
        try:
            result = response.json()
        except ValueError:
            result = None
        if not isinstance(result, dict):
            # A 200 we cannot read: the SMS may have gone out, so trying again could send it twice.
            raise AmbiguousSMSError("Ronglian answered HTTP 200 without a JSON object", "200")

        code = str(result.get("statusCode", ""))
        if code == SUCCESS:
            return result.get("templateSMS", {}).get("smsMessageSid", "")
        error = TransientSMSError if code in TRANSIENT_CODES else PermanentSMSError
        raise error(f"Ronglian refused the SMS: {code} {result.get('statusMsg', '')}".strip(), code)

    # --8<-- [end:send]


_client = None


def get_client():
    """The process's client, made on first use (after the worker forks its pool processes)."""
    global _client
    if _client is None:
        _client = RonglianClient(
            settings.RONGLIAN_ACC_ID,
            settings.RONGLIAN_ACC_TOKEN,
            settings.RONGLIAN_APP_ID,
            settings.RONGLIAN_BASE_URL,
            timeout=settings.RONGLIAN_TIMEOUT,
        )
    return _client


# --8<-- [start:mask]
def mask_mobile(mobile):
    """138****5678: enough to tell numbers apart in a log, not enough to call them."""
    mobile = str(mobile)
    return f"{mobile[:3]}****{mobile[-4:]}" if len(mobile) >= 8 else "****"
    # --8<-- [end:mask]
