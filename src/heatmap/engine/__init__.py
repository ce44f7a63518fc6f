"""The heat engine: pure numpy/scipy math, no I/O, no clock, no environment.

Time comes in as data (epoch milliseconds). The same engine runs in the
stream processor, in ``heat replay`` and in what-if queries.
"""
