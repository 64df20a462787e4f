"""Who this sensor is to Asgard: a random sensor id and the secret its pseudonyms are keyed with.

Both are made once, from the operating system's randomness, and kept in the store (``kv``), so a
device keeps its pseudonym across restarts and Asgard can follow it over time without ever learning
its MAC. Nothing about the sensor, its network or its owner goes into either.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from heimdal_tui.store import Store

SENSOR_ID_KEY = "asgard.sensor_id"
SECRET_KEY = "asgard.secret"
SECRET_BYTES = 32


@dataclass(frozen=True, slots=True)
class SensorIdentity:
    sensor_id: str
    secret: bytes = field(repr=False)

    @classmethod
    def load_or_create(cls, store: Store) -> SensorIdentity:
        sensor_id = store.kv_get(SENSOR_ID_KEY)
        secret_hex = store.kv_get(SECRET_KEY)
        secret: bytes | None = None
        if isinstance(secret_hex, str):
            try:
                secret = bytes.fromhex(secret_hex)
            except ValueError:
                secret = None
        if not isinstance(sensor_id, str) or not sensor_id:
            sensor_id = "hs-" + secrets.token_hex(12)
            store.kv_set(SENSOR_ID_KEY, sensor_id)
        if secret is None or len(secret) < 16:
            secret = secrets.token_bytes(SECRET_BYTES)
            store.kv_set(SECRET_KEY, secret.hex())
        return cls(sensor_id, secret)
