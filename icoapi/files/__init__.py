"""Measurement files: list, download, delete, analyze, metadata, embedded files."""
