"""Answers for the vendor: the embedded store behind the local collector, and ``insights``.

The store keeps the OpenTelemetry Collector ClickHouse exporter's tables (``layout``), filled
by a loopback writer that Rotel forwards to (``writer``, ``otlp``, ``store``); the questions
are written once (``questions``) and run on the embedded store or on ClickHouse (``engines``);
``report`` gathers the answers and ``text`` and ``html`` show them. Everything here needs the
``phonehome[insights]`` extra (DuckDB), imported only on these paths.
"""
