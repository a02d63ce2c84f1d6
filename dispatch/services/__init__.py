"""Dispatch services: every write to trips, offers and presence goes through these modules."""
