"""Portfolio heat: streaming, correlation-weighted risk concentration for trading desks."""

__version__ = "0.1.0"
