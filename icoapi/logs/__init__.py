"""Log files: list, view, download, ZIP and a live stream."""
