"""The headless daemon and the socket that consoles attach through.

``server`` serves a SensorSession's SensorLink over a local Unix socket (JSON lines); ``remote``
is the console's side, a SensorLink over that socket; ``run`` is the ``heimdal-tui daemon``
command. Nothing here imports textual.
"""
