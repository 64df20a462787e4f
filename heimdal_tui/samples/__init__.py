"""Seeded, deterministic scenario generator for sample_pcaps/."""
