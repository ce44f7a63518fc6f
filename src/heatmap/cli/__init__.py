"""The ``heat`` command line: one entry point, one sub-command per job."""
