"""pytest entry point (``pytest11: tigris``).

Loaded in every pytest run of an environment where pytest-tigris is installed, so it imports
nothing heavy at module level.
"""
