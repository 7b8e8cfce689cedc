"""HL7 v2 ADT feed: reader, parser, synthetic generator (see README.md here)."""
