"""Glue: a capture source, decoding and the device table, run headless."""
