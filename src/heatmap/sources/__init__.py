"""Sources: readers of recorded files (CSV), shared by ``replay`` and ``ingest``."""
