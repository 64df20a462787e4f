"""Capture sources: capture files, live interfaces, and the worker thread that runs them."""
