"""The ``dnc-sync`` command line: the front door that assembles every component's commands."""
