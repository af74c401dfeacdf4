"""The pure core: who may borrow what, until when, and what happened.

No I/O, no clock reads, no globals: every function takes the state, the reference data
and "now" as arguments and returns a decision with the events it implies.
"""
