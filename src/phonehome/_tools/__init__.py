"""Tools around the pipeline: the ``phonehome`` command, consent administration, debug output
and the local collector."""
