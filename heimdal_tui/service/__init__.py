"""Running Heimdal as a service: the daemon's single-instance lock, the doctor checks, backup and
restore of the store, structured JSON logs, and retention for a store on an SD card.

Engine side (never imports textual). Nothing is imported here: ``python -m
heimdal_tui.service.deps`` must be able to run where a compiled dependency would crash on import.
"""
