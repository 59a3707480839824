"""imgfront: build container images for several platforms at once and merge them into one manifest list."""

__version__ = "0.1.0"
