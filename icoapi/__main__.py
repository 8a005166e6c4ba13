"""``python -m icoapi``: start the service."""

from icoapi.api import main

main()
