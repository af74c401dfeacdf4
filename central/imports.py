"""Importing a kiosk's USB export: the signature checked, then the same idempotent
ingest as a push, in chunks the size of a push. Importing twice changes nothing."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from bookcorner.central import db
from bookcorner.central.ingest import Batch, check, ingest
from bookcorner.central.kiosks import signing_key_of
from bookcorner.protocol.export import ExportInvalid, open_body, open_envelope
from bookcorner.protocol.messages import MAX_BATCH, ImportChunk, ImportReply


def import_export(store: db.Store, data: bytes, received: datetime | None = None, *,
                  chunk: int = MAX_BATCH) -> ImportReply:
    """Raises ExportInvalid (not an export, tampered with, unknown kiosk) or an IngestError."""
    received = received or db.now()
    envelope = open_envelope(data)
    key = signing_key_of(store, envelope.kiosk_id)
    if key is None:
        raise ExportInvalid(f"no kiosk {envelope.kiosk_id!r} on this server (add it with `bookcorner central add-kiosk`)")
    body = open_body(envelope, key)
    events = body.events
    pieces = [events[i:i + chunk] for i in range(0, len(events), chunk)] or [[]]
    start = body.from_seq
    chunks, applied_seq = [], 0
    for index, piece in enumerate(pieces):
        end = body.to_seq if index == len(pieces) - 1 else piece[-1].seq
        batch = Batch(body.kiosk_id, f"{body.batch_id}.{index}", start, end, body.clock, piece, source="import",
                      journal=body.journal)
        check(batch, body.kiosk_id)
        reply = ingest(store, batch, received)
        counts = Counter("duplicate" if reply.replayed else str(r.outcome) for r in reply.results)
        chunks.append(ImportChunk(start, end, counts["applied"], counts["applied_with_warning"], counts["duplicate"],
                                  counts["needs_review"]))
        applied_seq = reply.applied_seq
        start = end + 1
    return ImportReply(kiosk_id=body.kiosk_id, applied_seq=applied_seq, chunks=chunks)
