"""Frozen evaluation protocols: a versioned dataclass whose name and hash go with every result."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict


def protocol_hash(protocol) -> str:
    """Short stable hash of a protocol dataclass's fields."""
    blob = json.dumps(asdict(protocol), sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:10]


def protocol_record(protocol) -> dict:
    """``{"name", "version", "hash", "settings"}`` to embed in a result's JSON."""
    return {"name": protocol.name, "version": protocol.version, "hash": protocol_hash(protocol),
            "settings": asdict(protocol)}
