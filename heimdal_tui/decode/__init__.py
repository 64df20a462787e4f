"""Decoding frames: fixed headers in bulk (numpy), rare application payloads in Python."""
