"""Schemas: Zeek log types, Avro schemas for every log, Zeek log files and wire codecs."""
