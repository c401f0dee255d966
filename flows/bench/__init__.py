"""The benchmarks behind ``spymaster bench``: the live path, scoring latency, retrieval, and the
percentiles they share.
"""
