"""Embedded worlds: tasks that run offline, with a gold judge that knows the answer."""
