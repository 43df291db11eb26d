"""Example applications for pynomaly-security."""
