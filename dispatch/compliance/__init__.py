"""What the co-op reports to its regulator, built from the trip records and the ledger (issue 15).

- `zones.py`: the regulator's zone map (New York's TLC taxi zones), loaded from GeoJSON by staff, and the
  zone of a point;
- `hvfhv.py`: the New York High-Volume FHV trip-record format as plain data and pure functions;
- `trip_records.py`: the month's trip-record file, its exceptions (trips whose row cannot be produced,
  listed, never dropped) and its reconciliation with the ledger;
- `accessibility.py`: the month's wheelchair-accessible (WAV) figures against standard trips.

docs/compliance.md ("Trip records for the regulator", "Accessibility figures") describes them.
"""
