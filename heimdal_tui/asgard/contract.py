"""The Asgard API, version 1, as the sensor speaks it (docs/asgard-api.md is the full contract).

Everything both sides must agree on lives here: paths, item kinds, priorities, header names. The
reference server (:mod:`heimdal_tui.asgard.devserver`) imports the same names, so the two cannot
drift apart silently.
"""

from __future__ import annotations

CONTRACT_VERSION = 1

REGISTER_PATH = "/v1/sensors/register"
ANOMALIES_PATH = "/v1/metadata/anomalies"
DEVICES_PATH = "/v1/metadata/devices"
INTELLIGENCE_PATH = "/v1/intelligence"

KIND_ANOMALY = "anomaly"
KIND_DEVICE = "device"
ITEM_KINDS = (KIND_ANOMALY, KIND_DEVICE)
PATH_FOR_KIND = {KIND_ANOMALY: ANOMALIES_PATH, KIND_DEVICE: DEVICES_PATH}

# Higher goes first, and is dropped last when the queue is full.
SEVERITY_PRIORITY = {"critical": 40, "high": 30, "medium": 20, "low": 10}
DEVICE_PRIORITY = 5

# A request body is at most this big (the server may announce a smaller limit when registering).
MAX_BODY_BYTES = 1 << 20
MAX_BATCH_ITEMS = 1000

CONTRACT_HEADER = "X-Asgard-Contract"
SENSOR_HEADER = "X-Heimdal-Sensor"
