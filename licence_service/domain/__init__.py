"""Pure domain rules of the licence renewal service (RULES.md).

No framework imports here: everything is plain functions and frozen values so the
rule book can be tested, replayed and reused by the API, the workers and the import.
"""
