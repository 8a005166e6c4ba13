"""Hardware-control tests use the shared ``sim_server`` fixtures of tests/conftest.py."""
