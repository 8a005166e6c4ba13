"""The dataspace: measurement files leave the machine for Trident or an S3 store."""
