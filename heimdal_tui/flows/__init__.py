"""Bidirectional flow (connection) tracking."""
