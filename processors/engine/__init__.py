"""The built-in Zeek-compatible engine: packets in, Zeek's logs (and extracted files) out."""
