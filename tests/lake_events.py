"""Events of the two repository contracts (game_events, match_events) as the AWS path carries
them, for the tests that let the generated streaming job write a lake under local Spark
(tests/maintenance_job.py, tests/athena_views.py).

Every event is built with what a test needs to know of it without asking any engine: its
verdict (accepted, quarantine or reject, by the contract's rules as written in contracts/), its
variant, its time and, for accepted ones, the values its row holds (`Event.row`: column →
value, normalised with `norm`).
"""

import base64
import datetime
import decimal
import json
import random
import uuid

UTC = datetime.timezone.utc


def norm(value):
    """One comparable form for a value read back from Spark or written by a test: timestamps
    as UTC ISO text, decimals and dates as text, maps and structs as sorted pairs."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat(timespec="microseconds")
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, dict):
        return tuple(sorted((k, norm(v)) for k, v in value.items()))
    if hasattr(value, "asDict"):
        return norm(value.asDict(recursive=True))
    if isinstance(value, (list, tuple)):
        return tuple(norm(v) for v in value)
    return value


class Event:
    """One event: its body, the record the stream carries, and what the job must make of it."""

    def __init__(self, contract, body, verdict, received_at, sub, row=None, key=None, order=None):
        self.contract = contract
        self.body = body
        self.verdict = verdict
        self.received_at = received_at
        self.sub = sub
        self.request_id = "r-%s" % uuid.uuid4().hex[:16]
        self.row = row
        self.key = key
        # What orders the versions of an upsert key (its `latest_by`).
        self.order = order

    def variant(self, discriminator):
        return self.body.get(discriminator)

    def record(self, claims):
        """The stream record (data, partition key, arrival ms), as the edge function puts it."""
        millis = int(self.received_at.timestamp() * 1000)
        text = json.dumps(self.body)
        envelope = {
            "contractc": 1,
            "request_id": self.request_id,
            "received_at_ms": millis,
            "claims": {c: base64.b64encode(self.sub.encode()).decode() for c in claims},
            "body": base64.b64encode(text.encode()).decode(),
        }
        return (json.dumps(envelope).encode(), self.sub, millis)

    def stored_row(self, version):
        """The events row, enrichments included (None unless accepted)."""
        if self.verdict != "accepted":
            return None
        row = dict(self.row)
        row.update({
            "ingest_time": norm(self.received_at),
            "contract_version": version,
            "request_id": self.request_id,
        })
        return row


def _ms(moment):
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def game_event(received_at, event_type, verdict="accepted", rng=random, sub="player-1", uuid_field=False):
    """A game_events event of `event_type` received at `received_at`: accepted, quarantined
    (updated 40 days before it arrived: `not_before` with policy quarantine) or rejected (an
    event id breaking its pattern)."""
    received_at = _ms(received_at)
    updated = (received_at - datetime.timedelta(seconds=rng.randrange(0, 3 * 86400))).replace(microsecond=0)
    if verdict == "quarantine":
        updated = (received_at - datetime.timedelta(days=40)).replace(microsecond=0)
    event_id = "e-%06d" % rng.randrange(10 ** 6)
    body = {
        "event_id": event_id if verdict != "reject" else "bad id!",
        "event_type": event_type,
        "updated_at": updated.strftime("%Y-%m-%d %H:%M:%S"),
        "event_data": "data %s" % uuid.uuid4().hex[:8],
    }
    if uuid_field:
        body["event_uuid"] = str(uuid.uuid4())
    row = {
        "event_id": body["event_id"],
        "event_type": event_type,
        "updated_at": norm(updated.replace(tzinfo=None)),
        "event_data": body["event_data"],
        "event_uuid": body.get("event_uuid"),
        "player_id": sub,
        "client_version": None,
    }
    return Event("game_events", body, verdict, received_at, sub, row)


def _match_payload(kind, rng):
    """A variant's payload members (as sent) and their row values (normalised)."""
    if kind == "match_started":
        players = [{"player_id": str(uuid.uuid4()), "skill": round(rng.uniform(0, 5000), 2)} for _ in range(2)]
        payload = {"map_name": "map-%d" % rng.randrange(10), "players": players}
        return payload, {"map_name": payload["map_name"], "players": norm(players)}
    cents = decimal.Decimal("0.01")
    if kind == "match_ended":
        pool = decimal.Decimal(rng.randrange(0, 100000)) / 100
        payload = {"duration_s": rng.randrange(0, 86400), "scores": {"a": rng.randrange(100), "b": 3}, "prize_pool": str(pool)}
        return payload, {"duration_s": payload["duration_s"], "scores": norm(payload["scores"]), "prize_pool": str(pool.quantize(cents))}
    price = decimal.Decimal(rng.randrange(0, 1000000)) / 100
    day = datetime.date(2026, 1, 1) + datetime.timedelta(days=rng.randrange(300))
    payload = {"sku": "ABC-%04d" % rng.randrange(10000), "price": str(price), "purchased_on": day.isoformat()}
    return payload, {"sku": payload["sku"], "price": str(price.quantize(cents)), "purchased_on": day.isoformat()}


def match_event(received_at, kind, occurred_at, verdict="accepted", rng=random, match_id=None, event_id=None, sub="server-1"):
    """A match_events event: accepted, quarantined (an unknown member: `unknown_fields:
    quarantine`) or rejected (a region not in its list)."""
    received_at = _ms(received_at)
    occurred_at = occurred_at.replace(microsecond=0)
    body = {
        "event_id": event_id or str(uuid.uuid4()),
        "kind": kind,
        "occurred_at": occurred_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "match_id": match_id or "m-%012x" % rng.randrange(16 ** 12),
        "region": "eu-west" if verdict != "reject" else "mars",
        "build": {"version": "1.%d.0" % rng.randrange(10), "platform": "pc"},
        "tags": ["ranked"],
    }
    payload, row = _match_payload(kind, rng)
    body.update(payload)
    if verdict == "quarantine":
        body["unexpected"] = True
    for name in ("event_id", "kind", "match_id", "region"):
        row[name] = body[name]
    row.update({
        "occurred_at": norm(occurred_at.replace(tzinfo=None)),
        "build": norm(body["build"]),
        "tags": norm(body["tags"]),
        "server_id": sub,
    })
    return Event("match_events", body, verdict, received_at, sub, row, key=body["event_id"], order=occurred_at)


def stored_rows(events, version, upsert):
    """The events table's rows the accepted `events` make (the latest version per key for an
    upsert table: by `order`, the first received among equals), as normalised dicts."""
    accepted = [e for e in events if e.verdict == "accepted"]
    if upsert:
        latest = {}
        for e in accepted:
            held = latest.get(e.key)
            if held is None or e.order > held.order:
                latest[e.key] = e
        accepted = list(latest.values())
    return accepted, [e.stored_row(version) for e in accepted]
