"""Producers: hand captures (files, folders, interfaces) and live Zeek logs to Kafka."""
