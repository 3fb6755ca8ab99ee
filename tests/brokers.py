"""What a test asks the broker, the same questions for Redis and RabbitMQ: how many messages wait in a
queue, how many a worker holds unacknowledged, what the stored messages say.

The two store a message differently. The Redis transport keeps each queue as a list (database 15) and a
message a worker has taken, until it is acknowledged, in the hash "unacked". RabbitMQ keeps its queues
itself and knows which consumer holds which message; its management API counts them only every 5 s, so
the tests count what the live workers hold from their own logs.
"""

from __future__ import annotations

import base64
import json
import urllib.error
from urllib.parse import quote

import amqp
import redis


class RedisQueues:
    kind = "redis"
    # How long nothing may be pending before no more SMS can come (wait_until_settled): the gap it covers
    # (a message popped from its list, not yet written into "unacked") lasts milliseconds.
    settled = 0.2

    def __init__(self, url: str):
        self.url = url
        self.client = redis.Redis.from_url(url)

    def ready(self, queue: str) -> int:
        """Messages waiting in ``queue`` for a worker."""
        return self.client.llen(queue)

    def unacked(self) -> int:
        """Messages a worker has taken and not yet acknowledged (acks_late: until its task has ended)."""
        return self.client.hlen("unacked")

    def pending(self) -> int:
        """Messages of the step's queues (sms, celery) waiting, or held by a worker."""
        return self.ready("sms") + self.ready("celery") + self.unacked()

    def task_args(self, queue: str) -> list[list]:
        """The positional arguments of each task message waiting in ``queue``."""
        return [
            json.loads(base64.b64decode(json.loads(raw)["body"]))[0]
            for raw in self.client.lrange(queue, 0, -1)
        ]

    def stored(self) -> str:
        """Every value in the broker's database, as text (with each message's body decoded)."""
        values = stored(self.url)
        bodies = []
        for line in values.splitlines():
            try:
                bodies.append(base64.b64decode(json.loads(line)["body"]).decode(errors="replace"))
            except (ValueError, KeyError, TypeError):
                pass
        return "\n".join([values, *bodies])

    def clear(self) -> None:
        self.client.flushdb()

    def close(self) -> None:
        self.client.close()


class RabbitQueues:
    """``held``: how many messages the running workers hold (a function; tests/harness.py counts the tasks
    each worker has received and not yet ended, from its log). RabbitMQ's own count of unacknowledged
    messages is in its management API, refreshed only every 5 s; and a message a worker held is back in
    its queue the moment that worker's connection drops, so the live workers are the only holders."""

    kind = "rabbitmq"
    # A message a worker has just taken is in no queue and not yet in its log for a few milliseconds.
    settled = 0.3

    def __init__(self, server, held=lambda: 0):
        self.server = server
        self.held = held

    def _channel(self):
        server = self.server
        connection = amqp.Connection(f"{server.bind}:{server.port}", userid=server.user, password=server.password,
                                     connect_timeout=2)  # fmt: skip
        connection.connect()
        return connection, connection.channel()

    def ready(self, *queues: str) -> int:
        """Messages waiting in these queues (one connection for all: pending() polls it)."""
        connection, channel = self._channel()
        total = 0
        try:
            for queue in queues:
                try:
                    total += channel.queue_declare(queue, passive=True).message_count
                except amqp.exceptions.NotFound:
                    channel = connection.channel()  # the broker closed the channel that asked
            return total
        finally:
            connection.collect()

    def pending(self) -> int:
        return self.ready("sms", "celery") + self.held()

    def _peek(self, queue: str) -> list[amqp.Message]:
        """The messages waiting in ``queue``, left there: taken without acknowledging, then the channel
        closes and RabbitMQ puts them back."""
        connection, channel = self._channel()
        messages = []
        try:
            while (message := channel.basic_get(queue, no_ack=False)) is not None:
                messages.append(message)
        except amqp.exceptions.NotFound:
            pass
        finally:
            connection.collect()
        return messages

    def task_args(self, queue: str) -> list[list]:
        return [json.loads(message.body)[0] for message in self._peek(queue)]

    def stored(self) -> str:
        """Every message in every queue but the exclusive ones (event receivers' own: their content is the
        events, which the hostile matrix reads as they come)."""
        texts = []
        for name, queue in self.server.queues().items():
            if queue.get("exclusive"):
                continue
            for message in self._peek(name):
                body = (
                    message.body.decode(errors="replace") if isinstance(message.body, bytes) else message.body
                )
                texts += [repr(message.properties), repr(message.headers), body]
        return "\n".join(texts)

    def clear(self) -> None:
        """Empty every queue but the exclusive ones (a connection's own: replies, events), which go with it."""
        for name, queue in self.server.queues().items():
            if not queue.get("exclusive"):
                try:
                    self.server.api(f"queues/%2F/{quote(name, safe='')}/contents", method="DELETE")
                except urllib.error.HTTPError as exc:
                    if exc.code != 404:  # gone meanwhile (auto-delete)
                        raise

    def close(self) -> None:
        pass


def stored(url: str) -> str:
    """Every value in one Redis database (the broker's messages; the result backend's results)."""
    client = redis.Redis.from_url(url)
    try:
        values = []
        for key in client.scan_iter():
            kind = client.type(key)
            if kind == b"string":
                values.append(client.get(key))
            elif kind == b"list":
                values.extend(client.lrange(key, 0, -1))
            elif kind == b"hash":
                values.extend(client.hvals(key))
            elif kind == b"zset":
                values.extend(client.zrange(key, 0, -1))
            elif kind == b"set":
                values.extend(client.smembers(key))
        return "\n".join(v.decode(errors="replace") for v in values if v)
    finally:
        client.close()
