"""Background jobs of the application that are too heavy for a request (they may decode
and encode media, which the SFU engine never does)."""
