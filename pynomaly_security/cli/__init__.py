"""Command-line entry points (see ``pynomaly_security.__main__``)."""
