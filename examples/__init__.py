"""Runnable examples; a package so that ``workflow --import examples.pipeline.tasks`` works."""
