"""An order pipeline as a declarative flow: ``pipeline.json`` over the tasks of ``tasks.py``."""
