"""Helpers the tests share: services as child processes, the real pipeline, sample books
and frames, waiting with a deadline, the live page's browser, import checks."""
