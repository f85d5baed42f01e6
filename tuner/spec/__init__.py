"""One sweep, specified: the command line resolved into a checked ``SweepSpec``, its saved copy."""
