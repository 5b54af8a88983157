"""Consumers: topic windows and captures straight into DataFrames."""
