"""Everything checked before a sweep starts (connections, data, resources) and its exit status."""
