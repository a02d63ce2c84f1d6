"""The share-trip page at /share/{token}: a trip's live progress for the link's holder (docs/safety.md)."""

urlpatterns: list = []
