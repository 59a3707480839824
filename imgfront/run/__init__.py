"""One multi-platform run: the plan, the scheduler, the progress display, the list merge and the metadata."""
