"""Synthetic source data for the demo, tests and benchmarks: never read by the
nightly pipeline. ``adt_feed.generate`` writes a deterministic HL7 v2 ADT feed in
exactly the interface format the loader reads (``healthops generate`` / ``demo``);
``workforce.generate_workforce`` the HR export's daily snapshots and the timekeeping
vendor's ``tk`` tables for the same units."""
