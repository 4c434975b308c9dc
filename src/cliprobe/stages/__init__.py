"""Stage entry points, one module per DVC stage: ``python -m cliprobe.stages.<stage>``.

Each is thin: parse the cell, read params.yaml, call library code, write outputs atomically.
"""
