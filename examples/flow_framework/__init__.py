"""The JSON flow framework's two-step example, run by this package's engine."""
