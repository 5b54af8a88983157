"""Processors: the Bro (Zeek) processor and its engines, file analysis and stats."""
