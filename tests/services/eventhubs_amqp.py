"""A stand-in Event Hubs namespace speaking AMQP 1.0, for tests of the AMQP path (Basic tier).

There is no Event Hubs emulator outside Docker, so the tests run ``azure-eventhub`` (its
pure-python pyamqp transport) against this: a separate process on 127.0.0.1, written on
``python-qpid-proton``, holding events in memory. It implements exactly the subset the SDK uses,
read from ``azure/eventhub/_pyamqp`` and ``_client_base.py``; nothing more:

- SASL ANONYMOUS (pyamqp's mechanism for token auth) or PLAIN, no TLS (the SDK turns TLS off
  for ``UseDevelopmentEmulator=true`` connection strings and takes the port from ``Endpoint``).
- Every frame proton writes reaches the client with its performative's field list complete.
  AMQP lets a peer leave out trailing null fields and proton does; pyamqp indexes those fields
  without a length check (``frame[4]`` of OPEN, ``frame[11]`` as TRANSFER's payload), and the
  service always sends them. :class:`_FramePadder` pads the lists with nulls on the way out,
  a loopback relay in front of proton's listener; nothing else about the bytes changes.
- CBS ``put-token`` on ``$cbs``: a ``SharedAccessSignature`` whose HMAC-SHA256 signature is
  checked against the namespace key, its key name and expiry too. A bad token answers 401, so a
  wrong key fails as it does on the service. Links to a hub need a token for it (or the namespace).
- ``$management`` READ of ``com.microsoft:eventhub`` (name, created_at, partition_count,
  partition_ids) and ``com.microsoft:partition`` (begin/last_enqueued_sequence_number,
  last_enqueued_offset, last_enqueued_time_utc, is_partition_empty); unknown hubs answer 404.
- Sender links to ``<hub>`` (partition from a stable hash of ``x-opt-partition-key``, else
  round-robin) and ``<hub>/Partitions/<n>``; batched sends (the SDK's ``EventDataBatch``) are
  unpacked into their events. Proton does not expose a transfer's message-format, so a batch is
  recognised by its structure: every data section is itself a whole encoded AMQP message.
  Links advertise ``max-message-size`` (262,144 bytes by default: the Basic tier's limit), which
  the SDK sizes its batches by; a larger transfer is rejected.
- Receiver links on ``<hub>/ConsumerGroups/<cg>/Partitions/<n>`` honouring the
  ``apache.org:selector-filter:string`` filter on x-opt-sequence-number, x-opt-offset or
  x-opt-enqueued-time with ``>`` or ``>=``, delivering pre-settled events with the message
  annotations x-opt-sequence-number, x-opt-offset, x-opt-enqueued-time, x-opt-partition-key.

Run: ``python -m tests.services.eventhubs_amqp --port P --key-name K --key V --hub NAME=PARTITIONS …``;
:func:`running_namespace` starts it on a free port and stops it by PID.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import os
import re
import socket
import sys
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote_plus

from proton import UNDESCRIBED, Array, Data, Delivery, Described, Link, Message, symbol, timestamp
from proton.handlers import MessagingHandler
from proton.reactor import Container

from flows.services.local_process import free_port, listening_process

BASIC_TIER_MAX_BYTES = 262_144
"""Event Hubs Basic tier: 256 KB per event (and per batch); Standard and up: 1 MB."""
_SELECTOR = symbol("apache.org:selector-filter:string")
_FILTER = re.compile(r"amqp\.annotation\.(x-opt-[a-z-]+)\s*(>=|>)\s*'([^']*)'")
_SECTION_CODES = frozenset(range(0x70, 0x79))
"""AMQP message section descriptors: header … footer."""


@dataclass(frozen=True, slots=True)
class Event:
    sequence: int
    offset: int
    enqueued_ms: int
    body: bytes
    properties: dict
    partition_key: str | None


@dataclass(slots=True)
class Partition:
    events: list[Event] = field(default_factory=list)
    next_offset: int = 0

    def append(self, body: bytes, properties: dict, key: str | None) -> None:
        self.events.append(Event(len(self.events), self.next_offset, int(time.time() * 1000), body, properties, key))
        self.next_offset += len(body) + 1


@dataclass(slots=True)
class Consumer:
    """A client's receiver link: the partition it reads and the index of the next event to send."""

    hub: str
    partition: int
    next_index: int


def entity_path(address: str | None) -> str:
    """``amqps://host/hub/Partitions/0`` (how the SDK names links) or ``hub/Partitions/0`` → the path."""
    text = address or ""
    if "://" in text:
        text = text.split("://", 1)[1].partition("/")[2]
    return text.strip("/")


def stable_partition(key: str, partitions: int) -> int:
    """The partition of a partition key: a stable hash, the same in every run and process."""
    return zlib.crc32(key.encode()) % partitions


def split_sections(raw: bytes) -> list[tuple[int, Any]] | None:
    """An encoded message's sections as (descriptor code, value: whatever AMQP decoding gave, bytes
    for a data section, a map for application properties); None if ``raw`` is not one."""
    out: list[tuple[int, Any]] = []
    view = memoryview(raw)
    while len(view):
        if len(view) < 3 or view[0] != 0x00 or view[1] != 0x53 or view[2] not in _SECTION_CODES:
            return None
        data = Data()
        try:
            used = data.decode(bytes(view))
        except Exception:  # noqa: BLE001 - not AMQP: the caller treats the bytes as a plain body
            return None
        value = data.get_object()
        out.append((int(view[2]), _owned(value.value if isinstance(value, Described) else value)))
        view = view[used:]
    return out or None


def _owned(value: object) -> object:
    """Binary values copied out: proton hands them out as views of a buffer it frees with its Data."""
    if isinstance(value, memoryview):
        return bytes(value)
    if isinstance(value, dict):
        return {_owned(k): _owned(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_owned(v) for v in value]
    return value


class Namespace(MessagingHandler):
    """The whole namespace: hubs of partitions, token checks, management answers, links."""

    def __init__(self, host: str, key_name: str, key: str, hubs: dict[str, int], max_bytes: int) -> None:
        super().__init__(prefetch=200, auto_accept=False, auto_settle=True)
        self._host, self._key_name, self._key, self._max_bytes = host, key_name, key.encode(), max_bytes
        self._hubs = {name: [Partition() for _ in range(n)] for name, n in hubs.items()}
        self._created_ms = int(time.time() * 1000)
        self._round_robin = 0
        self._consumers: dict[Link, Consumer] = {}
        self._granted: dict[object, set[str]] = {}
        """Per connection: the audiences (hub URIs or the namespace) it holds a valid token for."""

    # --- tokens ---------------------------------------------------------------------------------
    def _check_token(self, token: object) -> str | None:
        """The audience a SharedAccessSignature grants, or None if it is forged, foreign or expired."""
        text = token.decode() if isinstance(token, bytes) else str(token or "")
        if not text.startswith("SharedAccessSignature "):
            return None
        fields = {k: v[0] for k, v in parse_qs(text[len("SharedAccessSignature "):]).items()}
        audience, sig, expiry = fields.get("sr", ""), fields.get("sig", ""), fields.get("se", "")
        if fields.get("skn") != self._key_name or not expiry.isdigit() or int(expiry) < time.time():
            return None
        expected = base64.b64encode(hmac.new(self._key, f"{quote_plus(audience)}\n{expiry}".encode(),
                                             hashlib.sha256).digest()).decode()
        if not hmac.compare_digest(expected, sig):
            return None
        return audience.rstrip("/").lower()

    def _authorized(self, connection: object, path: str) -> bool:
        """A token for the namespace, or for the entity or one above it (hub, consumer group), opens it."""
        wanted = f"sb://{self._host}/{path}".lower().rstrip("/") + "/"
        return any(wanted.startswith(audience + "/") for audience in self._granted.get(connection, set()))

    # --- links ----------------------------------------------------------------------------------
    def on_link_opening(self, event) -> None:  # noqa: ANN001 - proton's event type
        link = event.link
        link.source.copy(link.remote_source)
        link.target.copy(link.remote_target)
        if link.is_receiver:
            link.max_message_size = self._max_bytes
            return
        address = entity_path(link.remote_source.address)
        if address in ("$cbs", "$management"):
            return
        parts = address.split("/")
        if len(parts) != 5 or parts[1].lower() != "consumergroups" or parts[3].lower() != "partitions":
            self._refuse(link, "amqp:not-found", f"{address} is not <hub>/ConsumerGroups/<cg>/Partitions/<n>")
            return
        hub, pid = parts[0], parts[4]
        partitions = self._hubs.get(hub)
        if partitions is None or not pid.isdigit() or int(pid) >= len(partitions):
            self._refuse(link, "amqp:not-found", f"the messaging entity {address} could not be found")
            return
        if not self._authorized(link.connection, address):
            self._refuse(link, "amqp:unauthorized-access", f"no valid token for {hub}")
            return
        start = self._start_index(partitions[int(pid)], link.remote_source.filter)
        self._consumers[link] = Consumer(hub, int(pid), start)

    def _refuse(self, link, condition: str, description: str) -> None:  # noqa: ANN001
        from proton import Condition

        print(f"refused a link: {condition}: {description}", file=sys.stderr, flush=True)
        link.open()
        link.condition = Condition(condition, description, {symbol("stand-in"): True})
        link.close()

    def _start_index(self, partition: Partition, filters: Data) -> int:
        selector = ""
        found = None
        if filters is not None:
            filters.rewind()
            if filters.next() is not None:
                found = _owned(filters.get_object())
        if isinstance(found, dict):
            value = found.get(_SELECTOR)
            selector = str(value.value if isinstance(value, Described) else value or "")
        match = _FILTER.search(selector)
        if match is None:
            return 0
        name, op, text = match.groups()
        if name == "x-opt-offset" and text == "-1":
            return 0
        if name == "x-opt-offset" and text == "@latest":
            return len(partition.events)
        bound = int(text)
        key = {"x-opt-sequence-number": lambda e: e.sequence, "x-opt-offset": lambda e: e.offset,
               "x-opt-enqueued-time": lambda e: e.enqueued_ms}[name]
        for i, ev in enumerate(partition.events):
            if key(ev) > bound or (op == ">=" and key(ev) == bound):
                return i
        return len(partition.events)

    def on_link_closing(self, event) -> None:  # noqa: ANN001
        self._consumers.pop(event.link, None)

    def on_connection_closing(self, event) -> None:  # noqa: ANN001
        self._granted.pop(event.connection, None)
        for link in [lk for lk in self._consumers if lk.connection is event.connection]:
            del self._consumers[link]

    def on_disconnected(self, event) -> None:  # noqa: ANN001
        self._granted.pop(event.connection, None)
        for link in [lk for lk in self._consumers if lk.connection is event.connection]:
            del self._consumers[link]

    # --- consumers ------------------------------------------------------------------------------
    def on_sendable(self, event) -> None:  # noqa: ANN001
        self._pump(event.link)

    def _pump(self, link) -> None:  # noqa: ANN001
        consumer = self._consumers.get(link)
        if consumer is None:
            return
        events = self._hubs[consumer.hub][consumer.partition].events
        while link.credit > 0 and consumer.next_index < len(events):
            ev = events[consumer.next_index]
            annotations = {symbol("x-opt-sequence-number"): ev.sequence, symbol("x-opt-offset"): str(ev.offset),
                           symbol("x-opt-enqueued-time"): timestamp(ev.enqueued_ms)}
            if ev.partition_key is not None:
                annotations[symbol("x-opt-partition-key")] = ev.partition_key
            msg = Message(body=ev.body, inferred=True, properties=ev.properties or None, annotations=annotations)
            delivery = link.send(msg)
            delivery.settle()
            consumer.next_index += 1

    def _wake(self, hub: str, partition: int) -> None:
        for link, consumer in list(self._consumers.items()):
            if consumer.hub == hub and consumer.partition == partition:
                self._pump(link)

    # --- incoming transfers ---------------------------------------------------------------------
    def on_delivery(self, event) -> None:  # noqa: ANN001
        delivery, link = event.delivery, event.link
        if not link.is_receiver:
            return
        if not delivery.readable or delivery.partial:
            return
        raw = link.recv(delivery.pending)
        link.advance()
        address = entity_path(link.remote_target.address)
        if len(raw) > self._max_bytes:
            self._settle(delivery, "amqp:link:message-size-exceeded", f"{len(raw)} bytes > {self._max_bytes}")
        elif address in ("$cbs", "$management"):
            self._request(link, delivery, address, raw)
        else:
            self._store(link, delivery, address, raw)

    def _settle(self, delivery, condition: str | None = None, description: str = "") -> None:  # noqa: ANN001
        if condition is None:
            delivery.update(Delivery.ACCEPTED)
        else:
            from proton import Condition

            print(f"rejected a transfer: {condition}: {description}", file=sys.stderr, flush=True)
            # info present: pyamqp reads the error's third field without checking the list's length
            delivery.local.condition = Condition(condition, description, {symbol("stand-in"): True})
            delivery.update(Delivery.REJECTED)
        delivery.settle()

    def _store(self, link, delivery, address: str, raw: bytes) -> None:  # noqa: ANN001
        hub, _, rest = address.partition("/")
        partitions = self._hubs.get(hub)
        if partitions is None:
            self._settle(delivery, "amqp:not-found", f"the messaging entity {hub} could not be found")
            return
        if not self._authorized(link.connection, address):
            self._settle(delivery, "amqp:unauthorized-access", f"no valid token for {hub}")
            return
        fixed = None
        if rest:
            pid = rest.split("/")[-1]
            if not rest.lower().startswith("partitions/") or not pid.isdigit() or int(pid) >= len(partitions):
                self._settle(delivery, "amqp:not-found", f"the messaging entity {address} could not be found")
                return
            fixed = int(pid)
        outer = split_sections(raw) or []
        outer_key = _partition_key(outer)
        bodies = [v for code, v in outer if code == 0x75]
        inner = [split_sections(bytes(b)) for b in bodies]
        events = ([sections for sections in inner if sections is not None]
                  if bodies and all(s is not None for s in inner) else [outer])
        touched = set()
        for sections in events:
            key = _partition_key(sections) or outer_key
            if fixed is not None:
                target = fixed
            elif key is not None:
                target = stable_partition(key, len(partitions))
            else:
                target = self._round_robin % len(partitions)
                self._round_robin += 1
            body = b"".join(bytes(v) for code, v in sections if code == 0x75)
            props = next((dict(v) for code, v in sections if code == 0x74 and v), {})
            partitions[target].append(body, props, key)
            touched.add(target)
        self._settle(delivery)
        for target in touched:
            self._wake(hub, target)

    # --- $cbs and $management -------------------------------------------------------------------
    def _request(self, link, delivery, node: str, raw: bytes) -> None:  # noqa: ANN001
        request = Message()
        request.decode(raw)
        props: dict[Any, Any] = request.properties or {}
        if node == "$cbs":
            audience = self._check_token(request.body)
            if audience is None:
                print("refused a token", file=sys.stderr, flush=True)
                status, text, body = 401, "InvalidSignature: the token's signature, key name or expiry is wrong", None
            else:
                self._granted.setdefault(link.connection, set()).add(audience)
                status, text, body = 202, "Accepted", None
        else:
            status, text, body = self._read(props)
        self._settle(delivery)
        reply = Message(correlation_id=request.id, body=body,
                        properties={"status-code": status, "status-description": text})
        other = link.connection.link_head(0)
        while other is not None:
            if other.is_sender and other.session == link.session and entity_path(other.remote_source.address) == node:
                other.send(reply).settle()
                return
            other = other.next(0)

    def _read(self, props: dict) -> tuple[int, str, Any]:
        if self._check_token(props.get("security_token")) is None:
            return 401, "InvalidSignature: the management request's token is not valid", None
        if props.get("operation") != "READ":
            return 400, f"operation {props.get('operation')!r} is not supported", None
        hub = str(props.get("name", ""))
        partitions = self._hubs.get(hub)
        if partitions is None:
            return 404, f"the messaging entity {self._host}/{hub} could not be found", None
        if props.get("type") == "com.microsoft:eventhub":
            ids = [str(i) for i in range(len(partitions))]
            return 200, "OK", {"name": hub, "type": "com.microsoft:eventhub", "created_at": timestamp(self._created_ms),
                               "partition_count": len(partitions),
                               # proton's inline types say PythonAMQPData; UNDESCRIBED is what it documents
                               "partition_ids": Array(UNDESCRIBED, Data.STRING, *ids)}  # type: ignore[arg-type]
        if props.get("type") == "com.microsoft:partition":
            pid = str(props.get("partition", ""))
            if not pid.isdigit() or int(pid) >= len(partitions):
                return 404, f"partition {pid} of {hub} does not exist", None
            events = partitions[int(pid)].events
            last = events[-1] if events else None
            return 200, "OK", {
                "name": hub, "type": "com.microsoft:partition", "partition": pid,
                "begin_sequence_number": 0, "last_enqueued_sequence_number": last.sequence if last else -1,
                "last_enqueued_offset": str(last.offset) if last else "-1",
                "last_enqueued_time_utc": timestamp(last.enqueued_ms if last else 0),
                "is_partition_empty": last is None}
        return 400, f"type {props.get('type')!r} is not supported", None


def _partition_key(sections: list[tuple[int, object]]) -> str | None:
    for code, value in sections:
        if code == 0x72 and isinstance(value, dict):
            key = value.get(symbol("x-opt-partition-key"))
            if key is not None:
                return key.decode() if isinstance(key, bytes) else str(key)
    return None


_FIELDS = {0x10: 10, 0x11: 8, 0x12: 14, 0x13: 11, 0x14: 11, 0x15: 6, 0x16: 3, 0x17: 1, 0x18: 1,
           0x40: 1, 0x41: 3, 0x42: 1, 0x43: 1, 0x44: 2}
"""Fields of each AMQP performative (open … close) and SASL frame (mechanisms … outcome)."""


class _FramePadder:
    """Rewrites the server's byte stream frame by frame: performative lists padded to full length."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> bytes:
        self._buf += data
        out = bytearray()
        while True:
            if self._buf[:4] == b"AMQP":
                if len(self._buf) < 8:
                    break
                out += self._buf[:8]
                del self._buf[:8]
                continue
            if len(self._buf) < 8:
                break
            size = int.from_bytes(self._buf[:4], "big")
            if len(self._buf) < size:
                break
            frame = bytes(self._buf[:size])
            del self._buf[:size]
            out += _pad_frame(frame)
        return bytes(out)


def _pad_frame(frame: bytes) -> bytes:
    start = frame[4] * 4
    body = frame[start:]
    if len(body) < 4 or body[0] != 0x00:
        return frame  # an empty (heartbeat) frame
    if body[1] == 0x53:
        code, at = body[2], 3
    elif body[1] == 0x80:
        code, at = int.from_bytes(body[2:10], "big"), 10
    else:
        return frame
    full = _FIELDS.get(code)
    if full is None:
        return frame
    kind = body[at]
    if kind == 0x45:
        count, fields, end = 0, b"", at + 1
    elif kind == 0xC0:
        size, count = body[at + 1], body[at + 2]
        fields, end = body[at + 3 : at + 2 + size], at + 2 + size
    elif kind == 0xD0:
        size, count = int.from_bytes(body[at + 1 : at + 5], "big"), int.from_bytes(body[at + 5 : at + 9], "big")
        fields, end = body[at + 9 : at + 5 + size], at + 5 + size
    else:
        return frame
    if count >= full:
        return frame
    fields += b"\x40" * (full - count)
    new_body = (body[:at] + b"\xd0" + (len(fields) + 4).to_bytes(4, "big") + full.to_bytes(4, "big") + fields
                + body[end:])
    head = frame[4:start]
    return (4 + len(head) + len(new_body)).to_bytes(4, "big") + head + new_body


def _relay(listener: socket.socket, inner_port: int) -> None:
    """Accept clients on the public port; copy their bytes to proton, and proton's back padded."""
    import threading

    def pipe(src: socket.socket, dst: socket.socket, padder: _FramePadder | None) -> None:
        try:
            while data := src.recv(1 << 16):
                dst.sendall(padder.feed(data) if padder else data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    while True:
        client, _ = listener.accept()
        server = socket.create_connection(("127.0.0.1", inner_port))
        for s in (client, server):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=pipe, args=(client, server, None), daemon=True).start()
        threading.Thread(target=pipe, args=(server, client, _FramePadder()), daemon=True).start()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--key-name", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--hub", action="append", default=[], help="NAME=PARTITIONS; repeat for more hubs")
    p.add_argument("--max-bytes", type=int, default=BASIC_TIER_MAX_BYTES)
    args = p.parse_args(argv)
    hubs = {name: int(n) for name, n in (h.split("=", 1) for h in args.hub)}
    import threading

    host = f"127.0.0.1:{args.port}"
    handler = Namespace(host, args.key_name, args.key, hubs, args.max_bytes)
    container = Container(handler)
    container.allowed_mechs = "ANONYMOUS PLAIN"  # type: ignore[assignment]  # proton infers None from its default
    container.allow_insecure_mechs = True
    inner = free_port()
    container.listen(f"127.0.0.1:{inner}")
    public = socket.create_server(("127.0.0.1", args.port))
    threading.Thread(target=_relay, args=(public, inner), daemon=True).start()
    container.run()


@dataclass(frozen=True, slots=True)
class StandIn:
    """A running stand-in namespace: its connection string (emulator style) and process id."""

    port: int
    key_name: str
    key: str
    pid: int

    def connection_string(self, hub: str | None = None, *, key: str | None = None) -> str:
        text = (f"Endpoint=sb://127.0.0.1:{self.port};SharedAccessKeyName={self.key_name};"
                f"SharedAccessKey={key or self.key};UseDevelopmentEmulator=true")
        return f"{text};EntityPath={hub}" if hub else text


@contextmanager
def running_namespace(log_path: Path, hubs: dict[str, int], *, max_bytes: int = BASIC_TIER_MAX_BYTES
                      ) -> Iterator[StandIn]:
    """Start the stand-in on a free loopback port, wait until it accepts, stop it by PID afterwards."""
    port = free_port()
    key_name, key = "RootManageSharedAccessKey", base64.b64encode(os.urandom(32)).decode()
    cmd = [sys.executable, "-m", "tests.services.eventhubs_amqp", "--port", str(port), "--key-name", key_name,
           "--key", key, "--max-bytes", str(max_bytes), *[f"--hub={n}={c}" for n, c in hubs.items()]]
    root = Path(__file__).resolve().parents[2]
    with listening_process(cmd, port, log_path, "the stand-in", cwd=root) as pid:
        yield StandIn(port, key_name, key, pid)


if __name__ == "__main__":
    main()
