"""Small helpers shared by every layer of the engine (no textual, no I/O)."""
