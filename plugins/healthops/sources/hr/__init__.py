"""The HR export: five CSV files, a complete snapshot every day (docs/sources.md#hr-export)."""
