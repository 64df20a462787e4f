"""The operator console: a Textual app on a SensorLink (in-process, or a daemon over its socket).

The only package that imports textual. It receives the sensor's immutable events as messages,
keeps them in a ConsoleState, refreshes the visible screen at most four times a second, and sends
commands back through the link from worker threads.
"""
