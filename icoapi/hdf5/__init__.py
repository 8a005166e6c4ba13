"""Measurement files in HDF5: layout, writing, reading, metadata, journal and
recovery, the hostile-file check and the name policy.

Both the measurement domain (which writes files) and the files domain (which reads
and edits them) use this package; nothing else knows how a file is laid out, and
no other package imports PyTables. Files from outside are opened only through
:func:`icoapi.hdf5.reader.open_measurement`, after :mod:`icoapi.hdf5.validation`
passed them.
"""
