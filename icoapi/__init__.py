"""icoapi: REST and WebSocket service for the ICOtronic wireless sensor system."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("icoapi")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"
