"""Hardware control: the one owner of the CAN link, STU and sensor-device endpoints."""
