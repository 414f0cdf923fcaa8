"""Shared helpers: one place each for seeding, saving and logging."""
