"""Configuration files (metadata, sensors, dataspace): download, upload, backups."""
