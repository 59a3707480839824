"""Leaf helpers that know nothing of images or engines: files, locks, the run's temporary folder."""
