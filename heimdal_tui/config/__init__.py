"""Configuration: TOML files, validated."""
