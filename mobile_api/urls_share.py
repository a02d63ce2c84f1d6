"""The share-trip page at /share/{token}: a trip's live progress for whoever holds the link (docs/safety.md)."""

urlpatterns: list = []
