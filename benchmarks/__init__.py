"""equip-mailer's benchmarks: one module per benchmark, a shared harness, one runner.

``python benchmarks/run.py`` is the way in (see benchmarks/README.md). The package exists so
the benchmark modules can import the harness and each other; it is not part of the installed
``equip_mailer`` and imports nothing from it until a benchmark runs.
"""
