"""Decisions from many runs: break-even over traffic scale, grids over scenario keys, price-date
replay and run-to-run comparison. Each returns a polars table; the CLI only prints and writes it.
"""
