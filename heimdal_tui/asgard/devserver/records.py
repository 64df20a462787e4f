"""What the reference server keeps: received items as JSON lines, de-duplicated by idempotency key,
and the intelligence it serves.

``DATA/received/anomalies.jsonl``, ``devices.jsonl``, ``register.jsonl``: one line per accepted item
(or registration): ``{"received": ISO time, "sensor_id": ..., "idempotency_key": ..., "item": ...}``.
Keys already in those files at start count as seen, so a restarted server still refuses copies.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from heimdal_tui.asgard import contract

FILE_FOR_KIND = {contract.KIND_ANOMALY: "anomalies.jsonl", contract.KIND_DEVICE: "devices.jsonl"}
REGISTER_FILE = "register.jsonl"
INTELLIGENCE_FILE = "intelligence.json"
MAX_KEY_CHARS = 128


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Records:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.received_dir = self.data_dir / "received"
        self.received_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._seen: set[tuple[str, str]] = set()
        self.accepted = 0
        self.duplicates = 0
        self.rejected = 0
        for name in FILE_FOR_KIND.values():
            path = self.received_dir / name
            if not path.exists():
                continue
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    record = json.loads(line)
                    self._seen.add((str(record["sensor_id"]), str(record["idempotency_key"])))
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut by a crash: its item will be sent again and accepted

    def accept(self, kind: str, sensor_id: str, items: list[Any]) -> dict[str, Any]:
        """Store the new items of a batch; the answer body (accepted, duplicates, rejected)."""
        accepted: list[str] = []
        duplicates: list[str] = []
        rejected: list[dict[str, str]] = []
        lines: list[str] = []
        with self._lock:
            for index, item in enumerate(items):
                problem = _item_problem(item, kind)
                key = item.get("idempotency_key") if isinstance(item, dict) else None
                if problem is not None:
                    rejected.append({"idempotency_key": str(key) if key else f"#{index}", "error": problem})
                    continue
                assert isinstance(key, str)
                if (sensor_id, key) in self._seen:
                    duplicates.append(key)
                    continue
                self._seen.add((sensor_id, key))
                accepted.append(key)
                lines.append(
                    json.dumps(
                        {"received": _now(), "sensor_id": sensor_id, "idempotency_key": key, "item": item},
                        ensure_ascii=False,
                        separators=(",", ":"),
                    )
                )
            if lines:
                with open(self.received_dir / FILE_FOR_KIND[kind], "a", encoding="utf-8") as handle:
                    handle.write("".join(line + "\n" for line in lines))
                    handle.flush()
            self.accepted += len(accepted)
            self.duplicates += len(duplicates)
            self.rejected += len(rejected)
        return {"accepted": accepted, "duplicates": duplicates, "rejected": rejected}

    def register(self, sensor_id: str, body: dict[str, Any]) -> None:
        line = json.dumps({"received": _now(), "sensor_id": sensor_id, "item": body}, ensure_ascii=False)
        with self._lock, open(self.received_dir / REGISTER_FILE, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    def intelligence(self, since: int) -> dict[str, Any]:
        """The answer to ``GET /v1/intelligence?since=``: everything when ``since`` is older than the
        file's version, else an empty delta. ValueError when the file is unusable."""
        path = self.data_dir / INTELLIGENCE_FILE
        if not path.exists():
            document: dict[str, Any] = {"version": 0}
        else:
            loaded = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(loaded, dict) or not isinstance(loaded.get("version"), int):
                raise ValueError(f"{path} must be a JSON object with an integer version")
            document = loaded
        version = int(document["version"])
        if since >= version:
            return {"version": version, "full": False, "indicators": [], "withdrawn": [], "profiles": {}}
        return {
            "version": version,
            "full": True,
            "indicators": list(document.get("indicators") or []),
            "withdrawn": [],
            "profiles": dict(document.get("profiles") or {}),
        }


def _item_problem(item: Any, kind: str) -> str | None:
    if not isinstance(item, dict):
        return "an item must be a JSON object"
    key = item.get("idempotency_key")
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_CHARS:
        return f"idempotency_key must be a string of 1..{MAX_KEY_CHARS} characters"
    if item.get("kind") != kind:
        return f"kind must be {kind!r} on this endpoint"
    if not isinstance(item.get("data"), dict):
        return "data must be a JSON object"
    return None
