"""Reproducible benchmarks: every figure is printed beside a baseline measured in the
same run, with their ratio (``make bench``, or ``python -m bench --help``).

Servers run in child processes and the load comes from the bench process, all on
127.0.0.1; every loop is bounded in count and in time.
"""
