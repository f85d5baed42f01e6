"""Searchers, schedulers and the launch gate (dedup, budget) that make up a sweep's Tuner."""
