"""Sensor definitions from sensors.yaml and the conversion coefficients they imply."""
