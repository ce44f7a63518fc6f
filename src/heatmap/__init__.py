"""Portfolio heat: streaming, correlation-weighted risk concentration for trading desks."""

from heatmap.numerics import pin_blas_kernel

# Before any module of the package imports numpy: one BLAS kernel on every machine.
pin_blas_kernel()

__version__ = "0.1.0"
