"""DNS names on their way to Asgard: which are external, and what of them may be sent.

A name is *local* (never sent) when it has a single label, ends in a suffix that only exists inside
networks (.local, .lan, .home.arpa, ...) or is a reverse-lookup name. An *external* name is sent as
its registered domain only (``cdn.tracker.example`` -> ``tracker.example``), and only when every
label is a plain LDH label: anything odd (escapes, spaces, markup) is dropped, not cleaned up.
"""

from __future__ import annotations

import re

from heimdal_tui.detect.baseline import registered_domain

NAME_POLICIES = ("registered_domain", "drop")

LOCAL_SUFFIXES = (
    "local",
    "lan",
    "home",
    "internal",
    "intranet",
    "corp",
    "private",
    "localdomain",
    "localhost",
    "home.arpa",
    "in-addr.arpa",
    "ip6.arpa",
    "test",
    "invalid",
    "fritz.box",
)
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_TLD = re.compile(r"^[a-z]{2,63}$|^xn--[a-z0-9-]{1,59}$")
# Something that could be a DNS name: letters, digits, hyphens, underscores and dots, a dot inside.
_NAME_SHAPE = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+\.?$")


def looks_like_name(text: str) -> bool:
    return len(text) <= 253 and bool(_NAME_SHAPE.match(text))


def is_local_name(name: str) -> bool:
    labels = name.lower().rstrip(".").split(".")
    if len(labels) < 2:
        return True
    joined = ".".join(labels)
    return any(joined == s or joined.endswith("." + s) for s in LOCAL_SUFFIXES)


def external_domain(name: str, policy: str) -> str | None:
    """What of ``name`` may leave the network under ``policy``: its registered domain when it is an
    external, well-formed name and the policy allows names; otherwise None."""
    if policy != "registered_domain" or not isinstance(name, str):
        return None
    text = name.strip().lower().rstrip(".")
    if not looks_like_name(text) or is_local_name(text):
        return None
    domain = registered_domain(text)
    labels = domain.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels) or not _TLD.match(labels[-1]):
        return None
    return domain
