"""The sensor: capture, pipeline, detection, store and sync run together, behind one narrow interface.

A :class:`~heimdal_tui.sensor.session.SensorSession` runs the engine in a thread of its own and
talks to the outside only through immutable, JSON-serialisable events (``events``) and named
commands with JSON arguments and results (``commands``). The console uses it in-process; the daemon
serves the same interface over a Unix socket, so a console can attach to it. Nothing here imports
textual.
"""
