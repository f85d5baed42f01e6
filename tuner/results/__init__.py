"""The end of a sweep: its summary and claim, the trials' artifacts, the parent run closed."""
