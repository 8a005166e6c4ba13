"""Measurements: acquisition, conversion, HDF5 storage and the live stream."""
