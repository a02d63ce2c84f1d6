"""Rides booked ahead: the pure rules of when they happen (recurrence.py). No Django, no I/O."""
