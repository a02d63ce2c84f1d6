"""The trip's money: settlement at completion and cancellation, tips, refunds, earnings, the weekly floor.

Workflows over dispatch's trips that write or read the kernel's ledger (backend/fares); the pure rules they
apply are backend/fares/pricing.py. Nothing below dispatch imports this package.
"""
