"""Country of a remote address: iptocc's offline RIR data, or a MaxMind .mmdb file when given."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from heimdal_tui.devices.locality import address_text


class CountryLookup:
    def __init__(self, mmdb_path: Path | None = None) -> None:
        self._reader = None
        if mmdb_path is not None:
            import maxminddb  # optional dependency: pip install 'heimdal-tui[geoip]'

            self._reader = maxminddb.open_database(str(mmdb_path))
        self.country = lru_cache(maxsize=65_536)(self._country)

    def _country(self, hi: int, lo: int) -> str | None:
        text = address_text(hi, lo)
        if self._reader is not None:
            record = self._reader.get(text)
            if isinstance(record, dict):
                country = record.get("country") or record.get("registered_country") or {}
                code = country.get("iso_code") if isinstance(country, dict) else None
                if isinstance(code, str):
                    return code
        from iptocc import country_code

        try:
            code = country_code(text)
        except ValueError:
            return None
        return code if isinstance(code, str) and code else None
