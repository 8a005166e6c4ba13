"""Measurement files in HDF5: layout, writing, reading, metadata, journal and recovery.

Both the measurement domain (which writes files) and the files domain (which reads
and edits them) use this package; nothing else knows how a file is laid out.
"""
