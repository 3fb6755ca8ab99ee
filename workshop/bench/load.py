"""Load generation: the step's send over raw sockets, open loop (a fixed offered rate) or closed loop.

Open loop is how users arrive: request i leaves at ``start + i / rate`` whether or not the earlier ones
have answered, and its latency is measured from that scheduled time, so a server that falls behind
shows it in the figures instead of slowing the load down (the closed loop's "coordinated omission").
Closed loop keeps a fixed number of requests in flight: it measures capacity, requests/s at saturation.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter

from . import stats
from .producer import nth_mobile

TIMEOUT = 30.0


def client_address(i: int) -> str:
    """The i-th client address in 127/8 (never 127.0.0.1): one per request, as distinct users have."""
    return f"127.{1 + (i // 62_500) % 250}.{(i // 250) % 250}.{1 + i % 250}"


def send_request(step: int, port: int, number: str) -> bytes:
    """The step's send for one number: the chapter's GET, or step 4's POST with a JSON body."""
    if step < 4:
        return f"GET /users/sms/{number}/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode()
    body = f'{{"mobile": "{number}"}}'
    return (
        f"POST /users/sms/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}"
    ).encode()


def status_of(request: bytes, port: int, source: str | None) -> int | str:
    """One request on its own connection (as nginx in front of gunicorn makes by default); its status.

    A raw socket, not http.client: its header parsing would cost the shared CPU more than gunicorn.
    """
    try:
        with socket.socket() as sock:
            sock.settimeout(TIMEOUT)
            if source:
                sock.bind((source, 0))
            sock.connect(("127.0.0.1", port))
            sock.sendall(request)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    except OSError as exc:
        return type(exc).__name__
    head = b"".join(chunks)[:12]  # b"HTTP/1.1 200"
    return int(head[9:12]) if head.startswith(b"HTTP/") and head[9:12].isdigit() else 0


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.statuses: Counter = Counter()

    def add(self, status, elapsed: float) -> None:
        with self.lock:
            self.statuses[status] += 1
            if status == 200:
                self.latencies.append(elapsed)

    def summary(self, elapsed: float) -> dict:
        errors = sum(n for status, n in self.statuses.items() if status != 200)
        result = stats.summarise(self.latencies, elapsed, errors=errors)
        result["statuses"] = {str(status): n for status, n in self.statuses.items()}
        return result


def open_loop(step: int, port: int, first: int, rate: float, seconds: float, many_addresses: bool) -> dict:
    """``rate`` requests a second for ``seconds``, each on schedule in a thread of its own."""
    tally, threads = Tally(), []
    count = round(rate * seconds)

    def one(i: int, scheduled: float) -> None:
        source = client_address(first + i) if many_addresses else None
        status = status_of(send_request(step, port, nth_mobile(first + i)), port, source)
        tally.add(status, time.perf_counter() - scheduled)

    start = time.perf_counter() + 0.05
    for i in range(count):
        scheduled = start + i / rate
        if (wait := scheduled - time.perf_counter()) > 0:
            time.sleep(wait)
        thread = threading.Thread(target=one, args=(i, scheduled), daemon=True)
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join(TIMEOUT + 5)
    # Served per second over the schedule itself, not over the last answer's tail.
    result = tally.summary(count / rate)
    result.update(offered_per_s=rate, sent=count)
    return result


def closed_loop(step: int, port: int, first: int, count: int, concurrency: int, max_seconds: float,
                many_addresses: bool) -> dict:  # fmt: skip
    """``count`` requests from ``concurrency`` threads, each sending its next as soon as one answers."""
    tally, lock = Tally(), threading.Lock()
    issued = 0
    deadline = time.monotonic() + max_seconds

    def take() -> int | None:
        nonlocal issued
        with lock:
            if issued >= count or time.monotonic() >= deadline:
                return None
            issued += 1
            return issued - 1

    def client() -> None:
        while (i := take()) is not None:
            source = client_address(first + i) if many_addresses else None
            started = time.perf_counter()
            status = status_of(send_request(step, port, nth_mobile(first + i)), port, source)
            tally.add(status, time.perf_counter() - started)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max_seconds + TIMEOUT)
    result = tally.summary(time.perf_counter() - started)
    result.update(concurrency=concurrency, sent=issued)
    return result
