"""Applications: thin shells over the Python API (command line, REST server, live mode, demo)."""
