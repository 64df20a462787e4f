"""Heimdal TUI: the edge sensor of the Heimdal network-security system and its operator console."""

__version__ = "0.1.0"
