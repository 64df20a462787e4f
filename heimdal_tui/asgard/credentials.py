"""Where the link's URL and API key come from, and keeping the key out of every message.

The URL: ``HEIMDAL_ASGARD_URL`` when set, else ``[asgard] url``. The key: ``HEIMDAL_ASGARD_API_KEY``
when set, else the file named by ``[asgard] api_key_file`` (a warning when others can read it). The
key lives in an :class:`ApiKey`, whose repr and str never show it; :func:`scrub` removes it from
any text (an error message, a server's reply) before that text is kept or shown.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field

from heimdal_tui.config.model import AsgardConfig, asgard_url_problem

URL_ENV = "HEIMDAL_ASGARD_URL"
KEY_ENV = "HEIMDAL_ASGARD_API_KEY"
MAX_KEY_BYTES = 4096


class ApiKey:
    """An API key that does not show itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The key itself: only for the Authorization header."""
        return self._value

    def __repr__(self) -> str:
        return "ApiKey(***)"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("an ApiKey is not pickled")


def scrub(text: str, key: ApiKey | None) -> str:
    """``text`` with every occurrence of the key replaced by ``***``."""
    if key is None:
        return text
    secret = key.reveal()
    return text.replace(secret, "***") if secret else text


@dataclass(frozen=True)
class LinkCredentials:
    """What the link may use: ``url`` and ``key`` when configured, else ``reason`` says why not.
    ``warnings`` are worth showing the operator (a key file others can read)."""

    url: str | None
    key: ApiKey | None = field(repr=False)
    reason: str | None
    warnings: tuple[str, ...] = ()
    key_source: str | None = None

    @property
    def configured(self) -> bool:
        return self.url is not None and self.key is not None


def resolve_credentials(config: AsgardConfig, env: Mapping[str, str] | None = None) -> LinkCredentials:
    env = os.environ if env is None else env
    url = (env.get(URL_ENV) or "").strip() or config.url
    if not url:
        return LinkCredentials(
            None, None, f"no Asgard URL: set [asgard] url in the configuration or {URL_ENV}"
        )
    problem = asgard_url_problem(url)
    if problem is not None:
        where = URL_ENV if env.get(URL_ENV) else "[asgard] url"
        return LinkCredentials(None, None, f"{where}: {problem}")
    url = url.rstrip("/")
    warnings: list[str] = []
    from_env = env.get(KEY_ENV)
    if from_env is not None and from_env.strip():
        key_text, source = from_env.strip(), KEY_ENV
    elif config.api_key_file is not None:
        path = config.api_key_file.expanduser()
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
            raw = path.read_bytes()[: MAX_KEY_BYTES + 1]
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            return LinkCredentials(url, None, f"cannot read the API key file {path}: {reason}")
        if mode & 0o077:
            warnings.append(
                f"the API key file {path} can be read by other users (mode {mode:04o}): chmod 600 {path}"
            )
        try:
            key_text = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            return LinkCredentials(url, None, f"the API key file {path} is not text")
        source = str(path)
    else:
        return LinkCredentials(
            url, None, f"no API key: set {KEY_ENV} or [asgard] api_key_file (a file of mode 0600)"
        )
    if not key_text:
        return LinkCredentials(url, None, f"the API key from {source} is empty", tuple(warnings))
    if (
        len(key_text) > MAX_KEY_BYTES
        or not key_text.isascii()
        or not key_text.isprintable()
        or " " in key_text
    ):
        return LinkCredentials(
            url,
            None,
            f"the API key from {source} holds characters an HTTP header cannot carry",
            tuple(warnings),
        )
    return LinkCredentials(url, ApiKey(key_text), None, tuple(warnings), source)
